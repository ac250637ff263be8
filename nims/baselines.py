"""Baselines NIMS is compared with.

``dominant_motion``: the classic motion-detection recipe: a robust affine fit of the dominant
(camera) motion on the whole frame, the residual flow magnitude, a threshold (Otsu's, or a value
in pixels), and connected components larger than ``min_region``. No learning, no relevance:
what a flow-only segmentation finds, parallax included.
"""

from __future__ import annotations

import numpy as np

from nims.flow import check_flow
from nims.motion import fit_affine
from nims.robust import otsu_threshold
from nims.step2 import connected_regions


def residual_magnitude(flow: np.ndarray) -> np.ndarray:
    """``|w - w_affine|`` per pixel (pixels), the affine model fitted on the whole frame."""
    flow = check_flow(flow)
    return fit_affine(flow).residual_magnitude(flow)


def dominant_motion_mask(
    flow: np.ndarray, threshold: str | float = "otsu", min_region: int = 50
) -> np.ndarray:
    """Pixels moving unlike the dominant affine motion, ``(H, W)`` bool.

    Parameters
    ----------
    flow : array (H, W, 2)
        Flow in pixels.
    threshold : "otsu" or float
        Residual magnitude (pixels) above which a pixel moves on its own.
    min_region : int
        Connected components smaller than this (pixels) are dropped.
    """
    residual = residual_magnitude(flow)
    if threshold == "otsu":
        level = otsu_threshold(residual)
    else:
        level = float(threshold)
        if not level >= 0:
            raise ValueError(f"method.threshold must be 'otsu' or >= 0 pixels, got {threshold}")
    moving = residual > level
    return connected_regions(moving.astype(np.int32), min_region) > 0
