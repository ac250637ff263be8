"""Step 2, epipolar version (``step2=epipolar``, beyond the paper): candidate regions are the
pixels whose flow breaks the epipolar geometry of the frame pair.

A static scene seen by a moving camera obeys one fundamental matrix ``F``, however near the
objects (parallax moves a point *along* its epipolar line); a point that moves on its own leaves
that line. ``F`` is fitted robustly (MAGSAC) to correspondences ``x -> x + w(x)`` sampled from
the flow, and a pixel is a candidate when its Sampson distance to ``F`` exceeds
``max(min_distance, noise_factor * median distance)``: the median tracks the flow's own error.
Candidates and the other pixels are split into connected components, then selected by relevance
like the other step 2 methods. Blind spots: a mover sliding along its epipolar line, and pairs
without camera translation (``F`` is then undetermined: nothing is a candidate).
Maps at the flow's resolution: flow ``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from nims.flow import check_flow
from nims.motion import pixel_grid
from nims.segmentation import (
    STEP2_METHODS,
    Segmentation,
    check_relevance,
    non_negative_int,
    positive,
    split_and_select,
)


def fundamental_matrix(
    flow: np.ndarray, samples: int = 4000, inlier_distance: float = 0.5, seed: int = 0
) -> Optional[np.ndarray]:
    """Robust fundamental matrix of the correspondences ``x -> x + flow(x)``.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    samples : int
        Pixels drawn (without replacement, ``seed``) to fit ``F``.
    inlier_distance : float
        MAGSAC's inlier threshold, pixels; ``F`` is then refitted to MAGSAC's inliers by
        least squares.

    Returns
    -------
    array, shape (3, 3), or None
        ``F`` with ``x1^T F x0 = 0`` in pixel coordinates; None when no model is found.
    """
    height, width = flow.shape[:2]
    chosen = np.random.default_rng(seed).permutation(height * width)[:samples]
    if chosen.size < 8:  # the fewest correspondences a fundamental matrix needs
        return None
    cols, rows = pixel_grid(height, width)
    start = np.column_stack([cols[chosen], rows[chosen]]).astype(np.float64)
    end = start + flow.reshape(-1, 2)[chosen]
    cv2.setRNGSeed(seed)
    matrix, inliers = cv2.findFundamentalMat(
        start, end, cv2.USAC_MAGSAC, inlier_distance, 0.999, 2000
    )
    if matrix is None or matrix.shape != (3, 3):
        return None
    # MAGSAC's own estimate is weighted by its noise model and leaves ~0.02 px on exact flow;
    # the (normalised) 8-point least squares on its inliers brings that to ~1e-7 px.
    inliers = inliers.ravel().astype(bool)
    if inliers.sum() >= 8:
        refined, _ = cv2.findFundamentalMat(start[inliers], end[inliers], cv2.FM_8POINT)
        if refined is not None and refined.shape == (3, 3):
            matrix = refined
    return matrix


def sampson_distance(matrix: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sampson distance (pixels) of every pixel's correspondence ``x -> x + flow(x)`` to the
    epipolar geometry ``matrix``: ``(H, W)`` float64, 0 for a point on its epipolar line."""
    height, width = flow.shape[:2]
    cols, rows = pixel_grid(height, width)
    start = np.column_stack([cols, rows, np.ones(cols.size)])
    end = start.copy()
    end[:, :2] += flow.reshape(-1, 2)
    line_in_end = start @ matrix.T  # F x0: the epipolar line of x0 in the second frame
    line_in_start = end @ matrix  # F^T x1
    algebraic = np.einsum("ij,ij->i", end, line_in_end)
    norm = line_in_end[:, 0] ** 2 + line_in_end[:, 1] ** 2
    norm += line_in_start[:, 0] ** 2 + line_in_start[:, 1] ** 2
    distance = np.abs(algebraic) / np.sqrt(np.maximum(norm, 1e-12))
    return distance.reshape(height, width)


def epipolar_distance(flow: np.ndarray, samples: int = 4000, seed: int = 0) -> np.ndarray:
    """Every pixel's Sampson distance (pixels) to the frame pair's fitted epipolar geometry:
    ``(H, W)`` float64, zeros when no fundamental matrix is found."""
    matrix = fundamental_matrix(flow, samples, seed=seed)
    if matrix is None:
        return np.zeros(flow.shape[:2])
    return sampson_distance(matrix, flow)


def outlier_threshold(distance: np.ndarray, min_distance: float, noise_factor: float) -> float:
    """The Sampson distance (pixels) above which a pixel leaves its epipolar line:
    ``max(min_distance, noise_factor * median distance)``, the median tracking the flow's own
    error."""
    return max(float(min_distance), float(noise_factor) * float(np.median(distance)))


def epipolar_outliers(
    flow: np.ndarray,
    min_distance: float = 0.05,
    noise_factor: float = 6.0,
    samples: int = 4000,
    seed: int = 0,
) -> np.ndarray:
    """Pixels whose flow leaves its epipolar line: ``(H, W)`` bool, true where
    :func:`epipolar_distance` exceeds :func:`outlier_threshold`."""
    distance = epipolar_distance(flow, samples, seed)
    return distance > outlier_threshold(distance, min_distance, noise_factor)


@STEP2_METHODS.register("epipolar")
def epipolar_step(
    flow: np.ndarray,
    relevance: np.ndarray,
    min_distance: float = 0.05,
    noise_factor: float = 6.0,
    samples: int = 4000,
    min_region: int = 50,
    connectivity: int = 8,
    seed: int = 0,
    selection: str = "relevance_mass",
    min_share: float = 0.1,
    **_: object,
) -> Segmentation:
    """Epipolar step 2: epipolar outliers -> connected components -> salient regions.

    ``min_distance`` (pixels) and ``noise_factor`` set the outlier test of
    :func:`epipolar_outliers`; ``samples`` and ``seed`` the fit of :func:`fundamental_matrix`;
    ``min_region``, ``connectivity``, ``selection`` and ``min_share`` as in the other methods.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    outliers = epipolar_outliers(
        flow,
        positive(min_distance, "step2.min_distance"),
        positive(noise_factor, "step2.noise_factor"),
        non_negative_int(samples, "step2.samples"),
        seed,
    )
    return split_and_select(outliers, relevance, min_region, connectivity, selection, min_share)
