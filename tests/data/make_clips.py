"""Write the committed clips the shipped checkpoints' floors are measured on
(``tests/test_checkpoint_floors.py``): a few frames of each task's generator, with exact flow.

Run once, from the repository root, when a clip is to change (the floors with it):
``.venv/bin/python tests/data/make_clips.py``. The clips are stored, not re-rendered by the
tests, so that a change of the generators cannot move the floors.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from nims.synthetic.sets import build_set

HERE = Path(__file__).parent
CLIPS = {  # task -> generator and the salient frames kept
    "independent": {"name": "independent_synth", "videos": 3, "frames": 2},
    "crowd": {"name": "crowd_synth", "videos": 3, "frames": 2},
}


def make_clip(task: str, cache: Path) -> Path:
    config = OmegaConf.create(
        {
            **CLIPS[task],
            "size": [128, 224],
            "salient_fraction": 1.0,
            "flow_source": "analytic",
            "cache_dir": str(cache),
            "seed": 7,
            "workers": 1,
        }
    )
    folder = build_set(config, None, progress=False)
    flows, masks = [], []
    for video in sorted(folder.glob("video_*")):
        labels = np.load(video / "labels.npy")
        video_flows = np.load(video / "flows.npy")
        video_masks = np.load(video / "masks.npy")
        for frame in np.flatnonzero(labels):
            flows.append(video_flows[frame])
            masks.append(video_masks[frame])
    path = HERE / f"{task}_clip.npz"
    np.savez_compressed(
        path, flows=np.stack(flows).astype(np.float16), masks=np.stack(masks).astype(bool)
    )
    return path


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cache:
        for task in CLIPS:
            path = make_clip(task, Path(cache))
            print(path, f"{path.stat().st_size / 1e3:.0f} kB")
