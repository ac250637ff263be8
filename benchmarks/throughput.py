"""``make bench``'s data throughput: the training input pipeline (frames per second a
``DataLoader`` delivers from a cached set), synthetic set generation and DAVIS flow caching."""

from __future__ import annotations

import time

from benchmarks.common import BLACKSWAN, median_ms


def bench_training_input() -> list:
    """The input pipeline alone: epochs of a cached set through the training ``DataLoader``."""
    import tempfile

    import torch
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader

    from nims.synthetic.frames import SyntheticFrames
    from nims.synthetic.sets import build_set

    torch.set_num_threads(2)
    input_size = tuple(OmegaConf.load("conf/model/classifier.yaml").input_size)
    with tempfile.TemporaryDirectory() as cache:
        config = OmegaConf.create(
            {
                "name": "crowd_synth",
                "videos": 10,
                "frames": 24,
                "size": [128, 224],
                "salient_fraction": 0.5,
                "flow_source": "analytic",
                "cache_dir": cache,
                "seed": 0,
            }
        )
        data = SyntheticFrames(build_set(config, None, progress=False), "all", input_size)
        start = time.perf_counter()
        _ = data.training_flows  # written once per set and input size
        store_ms = 1000 * (time.perf_counter() - start) / len(data)
        loader = DataLoader(
            data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
        )

        def epoch():
            for _ in loader:
                pass

        epoch_ms = median_ms(epoch, repeats=5)
    size = f"{input_size[0]}x{input_size[1]}"
    return [
        (
            f"training input store, written once ({len(data)} frames of 128x224)",
            f"flows at {size}",
            store_ms,
            "per frame",
        ),
        (
            "training input pipeline, batches of 32 shuffled",
            f"{1000 * len(data) / epoch_ms:.0f} frames/s at {size}",
            epoch_ms / len(data),
            ">= 5000 frames/s",
        ),
    ]


def bench_data() -> list:
    import tempfile

    from omegaconf import OmegaConf

    from nims.data import davis
    from nims.data.flow_cache import sequence_flows
    from nims.synthetic.sets import build_set

    dis = OmegaConf.create(
        {"name": "dis", "preset": "medium", "variational_refinement_iterations": None}
    )
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name in ("crowd_synth", "independent_synth"):
            config = OmegaConf.create(
                {
                    "name": name,
                    "videos": 3,
                    "frames": 16,
                    "size": [128, 224],
                    "salient_fraction": 0.5,
                    "flow_source": "estimated",
                    "cache_dir": cache,
                    "seed": 0,
                }
            )
            start = time.perf_counter()
            build_set(config, dis, progress=False)
            seconds = time.perf_counter() - start
            rows.append(
                (
                    f"generate {name} (estimated flow)",
                    f"{48 / seconds:.0f} frames/s",
                    1000 * seconds / 48,
                    "per frame",
                )
            )
        if (BLACKSWAN / "JPEGImages").is_dir():
            frames, _ = davis.check_sequence(BLACKSWAN, "blackswan")
            start = time.perf_counter()
            sequence_flows(davis.FrameSequence(frames), dis, cache, "davis2016", "blackswan")
            per_frame = (time.perf_counter() - start) / (len(frames) - 1)
            rows.append(
                (
                    "DIS flow computed + cached, DAVIS blackswan",
                    "854x480 JPEG frames",
                    1000 * per_frame,
                    f"1376 val frames: {1376 * per_frame:.0f} s (< 120 s)",
                )
            )
    return rows
