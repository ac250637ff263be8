"""Candidate points of the light step 2 against a crowd (``step2.candidates=contrast``, beyond
the paper; the crowd task's default): the pixels that move, once the dominant (camera) motion is
removed, in another direction than the crowd.

The dominant motion is a robust affine fit of the whole flow; a pixel *moves* when its residual
is a fair share of the crowd's speed (:func:`contrast_candidates`); the crowd's motion is the
per-component median residual of the moving pixels; a moving pixel is a candidate when its
residual points more than ``min_angle`` degrees away from the crowd's. The light step then
splits candidates and the other pixels into connected components and selects them by relevance
(:mod:`nims.step2.light`). Where the moving pixels have no common direction (a plaza crossed
every way), the median is small and the test degenerates into "moving against the average":
the crowd task's definition does not hold there. Maps at the flow's resolution: flow
``(H, W, 2)`` in pixels.
"""

from __future__ import annotations

import numpy as np

from nims.motion import fit_affine
from nims.step2.base import positive

# Pixels: a residual below this is flow noise whatever the resolution (a static scene whose
# flow is exactly affine leaves residuals of 1e-6 px, which the relative test alone would take
# for motion).
MOTION_FLOOR = 0.5


def camera_residual(flow: np.ndarray) -> np.ndarray:
    """The flow minus its dominant (camera) motion, a robust affine fit of the whole frame:
    ``(H, W, 2)`` in pixels; zero on a frame of fewer than 3 pixels (no motion to tell from
    the camera's)."""
    height, width = flow.shape[:2]
    if height * width < 3:
        return np.zeros_like(flow)
    return flow - fit_affine(flow).flow((height, width))


def contrast_candidates(
    flow: np.ndarray,
    min_motion: float = 0.8,
    min_angle: float = 60.0,
    noise_factor: float = 3.0,
    residual: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels moving against the crowd: ``(H, W)`` bool.

    Thresholds are relative, so that they hold at any resolution and frame rate: a pixel is
    *in motion* when its residual (after the dominant affine motion) exceeds ``noise_factor``
    times the frame's median residual (the flow's noise: most pixels are background) and
    :data:`MOTION_FLOOR`; the crowd's speed is the median residual of those pixels; a pixel
    *moves* when its residual exceeds ``min_motion`` times the crowd's speed.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    min_motion : float
        The least residual of a moving pixel, in units of the crowd's speed.
    min_angle : float
        Degrees, in (0, 180): the least angle between a candidate's residual and the crowd's.
    noise_factor : float
        The least residual of a pixel in motion, in units of the frame's median residual.
    residual : array, shape (H, W, 2), optional
        :func:`camera_residual` of ``flow``, when the caller has it already.
    """
    positive(min_motion, "step2.min_motion")
    positive(noise_factor, "step2.noise_factor")
    if not 0 < min_angle < 180:
        raise ValueError(f"step2.min_angle must be in (0, 180) degrees, got {min_angle}")
    if residual is None:
        residual = camera_residual(flow)
    magnitude = np.linalg.norm(residual, axis=-1)
    in_motion = magnitude > max(noise_factor * float(np.median(magnitude)), MOTION_FLOOR)
    if not in_motion.any():
        return in_motion
    moving = magnitude > min_motion * float(np.median(magnitude[in_motion]))
    crowd = np.median(residual[moving], axis=0)
    crowd_speed = float(np.linalg.norm(crowd))
    if crowd_speed == 0:
        return np.zeros_like(moving)
    cosine = (residual @ crowd) / np.maximum(magnitude * crowd_speed, 1e-12)
    return moving & (cosine < np.cos(np.radians(min_angle)))
