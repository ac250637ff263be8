"""Compare the flow backends: accuracy against references and time per 854x480 frame.

``python -m benchmarks.flow_backends`` prints a Markdown table:

- EPE vs RAFT: mean endpoint error (px) against the authors' RAFT flows of DAVIS blackswan
  frames 0->1, 1->2, 2->3, over all pixels and over a 10-pixel band around the swan's
  boundary (where NIMS needs sharp motion boundaries);
- EPE synthetic: against the exact flow of a built-in synthetic 854x480 scene (3 movers);
- time: median seconds per 854x480 frame pair on this machine.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from benchmarks.common import BLACKSWAN, RAFT_FLOWS
from nims.data.davis import read_image, read_mask
from nims.flow import read_flow
from nims.flow_backends import make_flow_estimator
from nims.synthetic.pairs import random_scene

BACKENDS = [
    ("dis", {"preset": "ultrafast"}),
    ("dis", {"preset": "fast"}),
    ("dis", {"preset": "medium"}),
    ("farneback", {}),
    ("pcaflow", {}),
    ("rlof", {}),
    ("deepflow", {}),
    ("tvl1", {}),
]


def end_point_error(flow, reference, mask=None):
    error = np.linalg.norm(flow - reference, axis=2)
    return float(error[mask].mean() if mask is not None else error.mean())


def boundary_band(mask, width=10):
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    as_uint8 = mask.astype(np.uint8)
    return (cv2.dilate(as_uint8, kernel) - cv2.erode(as_uint8, kernel)).astype(bool)


def main() -> None:
    frames = BLACKSWAN / "JPEGImages" / "480p" / "blackswan"
    pairs = []
    if (RAFT_FLOWS / "00000.flo").is_file():
        for index in range(3):
            pairs.append(
                (
                    read_image(frames / f"{index:05d}.jpg"),
                    read_image(frames / f"{index + 1:05d}.jpg"),
                    read_flow(RAFT_FLOWS / f"{index:05d}.flo"),
                    boundary_band(
                        read_mask(
                            BLACKSWAN / "Annotations" / "480p" / "blackswan" / f"{index:05d}.png"
                        )
                    ),
                )
            )
    scene = random_scene((480, 854), n_objects=3, seed=0)
    print(
        "| backend | EPE vs RAFT (px) | EPE vs RAFT, boundary band (px) | EPE synthetic (px) "
        "| time per frame (s) |\n|---|---|---|---|---|"
    )
    for name, options in BACKENDS:
        estimate = make_flow_estimator({"name": name, **options})
        times, errors, band_errors = [], [], []
        for image0, image1, reference, band in pairs:
            start = time.perf_counter()
            flow = estimate(image0, image1)
            times.append(time.perf_counter() - start)
            errors.append(end_point_error(flow, reference))
            band_errors.append(end_point_error(flow, reference, band))
        start = time.perf_counter()
        synthetic = end_point_error(estimate(scene.frame0, scene.frame1), scene.flow)
        times.append(time.perf_counter() - start)
        label = name + (f" ({options['preset']})" if options else "")
        raft = f"{np.mean(errors):.2f}" if errors else "n/a"
        band = f"{np.mean(band_errors):.2f}" if band_errors else "n/a"
        print(
            f"| {label} | {raft} | {band} | {synthetic:.2f} | {np.median(times):.3f} |", flush=True
        )


if __name__ == "__main__":
    main()
