"""How well the crowd task's flow follows the walkers, by frame rate.

``python -m benchmarks.crowd_flow`` renders salient ``crowd_synth`` frame pairs at 256x448 at
several frame rates (the same scenes: the frame rate is drawn after the scene), estimates the
flow with the crowd task's backend (``flow=dis_fine``) and prints a Markdown table: the mean
endpoint error (px) on the wrong-way walkers, on the other walkers and on the ground, and the
share of the wrong-way walkers' motion relative to the crowd's (median flow of the other
walkers) that the estimated flow keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from nims.flow_backends import make_flow_estimator
from nims.synthetic.crowd import CrowdConfig, crowd_video
from nims.synthetic.videos import trace_video

CONF = Path(__file__).resolve().parents[1] / "conf"
FRAME_RATES = (5.0, 8.0, 10.0, 17.0, 25.0)
VIDEOS = 12


def walker_errors(estimator, frame_rate: float, videos: int = VIDEOS) -> np.ndarray:
    """Per salient video: EPE on wrong-way walkers, other walkers, ground; relative motion kept."""
    config = CrowdConfig(size=(256, 448), frames=1, frame_rate=(frame_rate, frame_rate))
    rows = []
    for seed in range(videos):
        video = trace_video(*crowd_video(config, seed, salient=True))
        salient, others = video["masks"][0], video["others"][0]
        if not salient.any():
            continue
        exact = np.asarray(video["flows"][0], np.float32)
        estimated = estimator(video["frames"][0], video["frames"][1])
        error = np.linalg.norm(estimated - exact, axis=-1)

        def relative(flow, salient=salient, others=others):
            return np.linalg.norm(flow[salient].mean(0) - np.median(flow[others], 0))

        rows.append(
            (
                error[salient].mean(),
                error[others].mean(),
                error[~(salient | others)].mean(),
                relative(estimated) / relative(exact),
            )
        )
    return np.array(rows)


def main() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        flow_cfg = compose("evaluate", overrides=["task=crowd"]).flow
    estimator = make_flow_estimator(flow_cfg)
    settings = ", ".join(f"{key}={value}" for key, value in flow_cfg.items())
    print(f"the crowd task's flow ({settings}), 256x448, {VIDEOS} salient scenes\n")
    print("| frames/s | EPE wrong-way walkers, px | EPE others | EPE ground | motion kept |")
    print("|---|---|---|---|---|")
    for rate in FRAME_RATES:
        walkers, others, ground, kept = walker_errors(estimator, rate).mean(axis=0)
        print(f"| {rate:g} | {walkers:.2f} | {others:.2f} | {ground:.2f} | {kept:.2f} |")


if __name__ == "__main__":
    main()
