"""Timing helpers and the inputs the benchmarks share."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BLACKSWAN = SHARED_DATA / "davis2016-mini" / "DAVIS"
RAFT_FLOWS = SHARED_DATA / "flows" / "blackswan-raft"


def median_ms(function: Callable[[], object], repeats: int = 20, warmup: int = 2) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def blackswan_flow_and_relevance() -> tuple[np.ndarray, np.ndarray, str]:
    """An 854x480 flow and a relevance map: the authors' RAFT flow of blackswan with a relevance
    peaked on the swan when ../shared is there, else a synthetic scene of the same size."""
    from nims.flow import read_flow

    if (RAFT_FLOWS / "00000.flo").is_file():
        import cv2

        from nims.data.davis import read_mask

        flow = read_flow(RAFT_FLOWS / "00000.flo")
        mask = read_mask(BLACKSWAN / "Annotations" / "480p" / "blackswan" / "00000.png")
        relevance = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 15) + 0.01
        return flow, relevance, "DAVIS blackswan, RAFT flow"
    from nims.synthetic.pairs import random_scene

    scene = random_scene((480, 854), n_objects=3, seed=0)
    return scene.flow, scene.salient_mask + 0.01, "synthetic 854x480 scene"
