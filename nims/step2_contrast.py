"""Candidate points of the light step 2 against a crowd (``step2.candidates=contrast``, beyond
the paper; the crowd task's default): the pixels that move, once the dominant (camera) motion is
removed, in another direction than the crowd.

The dominant motion is a robust affine fit of the whole flow; a pixel *moves* when its residual
exceeds ``min_motion`` pixels; the crowd's motion is the per-component median residual of the
moving pixels; a moving pixel is a candidate when its residual points more than ``min_angle``
degrees away from the crowd's. The light step then splits candidates and the other pixels
into connected components and selects them by relevance (:mod:`nims.step2_light`). Where the
moving pixels have no common direction (a plaza crossed every way), the median is small and the test
degenerates into "moving against the average": the crowd task's definition does not hold there.
Maps at the flow's resolution: flow ``(H, W, 2)`` in pixels.
"""

from __future__ import annotations

import numpy as np

from nims.motion import fit_affine
from nims.segmentation import positive


def contrast_candidates(
    flow: np.ndarray, min_motion: float = 1.0, min_angle: float = 90.0
) -> np.ndarray:
    """Pixels moving against the crowd: ``(H, W)`` bool.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    min_motion : float
        Pixels: the least residual (after the dominant affine motion) of a moving pixel.
    min_angle : float
        Degrees, in (0, 180): the least angle between a candidate's residual and the crowd's.
    """
    positive(min_motion, "step2.min_motion")
    if not 0 < min_angle < 180:
        raise ValueError(f"step2.min_angle must be in (0, 180) degrees, got {min_angle}")
    height, width = flow.shape[:2]
    residual = flow - fit_affine(flow).flow((height, width))
    magnitude = np.linalg.norm(residual, axis=-1)
    moving = magnitude > min_motion
    if not moving.any():
        return moving
    crowd = np.median(residual[moving], axis=0)
    crowd_speed = float(np.linalg.norm(crowd))
    if crowd_speed == 0:
        return np.zeros_like(moving)
    cosine = (residual @ crowd) / np.maximum(magnitude * crowd_speed, 1e-12)
    return moving & (cosine < np.cos(np.radians(min_angle)))
