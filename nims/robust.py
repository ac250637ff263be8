"""Robust statistics of the motion fits: residual scales (normalised MAD), Huber IRLS, and
Otsu's threshold of a residual map (what moves unlike the fitted motion).

:func:`irls` minimises the Huber loss of linear residuals by iteratively reweighted least squares:
every iteration solves a small weighted normal-equation system in closed form; the scale of the
Huber threshold is the normalised median absolute deviation, re-estimated at each iteration.
"""

from __future__ import annotations

import cv2
import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD of a standard normal is 1 / 1.4826
HUBER_EPSILON = 1.35  # scikit-learn's default: 95% efficiency under Gaussian noise
SCALE_SAMPLE = 4096  # points used to estimate a residual scale (strided, deterministic)
MIN_SCALE = 0.01  # pixels; below any flow's accuracy, above the fits' convergence tolerance


def robust_scale(residuals: np.ndarray, method: str = "mad") -> float:
    """Scale of residuals in pixels: ``"mad"`` (1.4826 x MAD) or ``"std"`` (standard deviation).

    For more than :data:`SCALE_SAMPLE` residuals the scale is computed on an evenly strided
    subset of at least that many: the MAD's relative standard error is then under 2.5% while
    its cost no longer grows with the image size. The result is floored at :data:`MIN_SCALE`
    so that exact fits stay defined.
    """
    residuals = np.asarray(residuals)
    if residuals.size == 0:
        raise ValueError("robust_scale: no residuals (empty point set)")
    if method == "std":
        return max(float(np.std(residuals)), MIN_SCALE)
    if method != "mad":
        raise ValueError(f"scale must be 'std' or 'mad', got {method!r}")
    stride = max(1, residuals.size // SCALE_SAMPLE)
    sample = residuals[::stride]
    deviation = np.abs(sample - np.median(sample))
    return max(MAD_TO_SIGMA * float(np.median(deviation)), MIN_SCALE)


def robust_scales(residuals: np.ndarray) -> np.ndarray:
    """:func:`robust_scale` (MAD) of each row of ``(2, N)`` residuals, in one pass -> ``(2,)``.

    Uses the lower median, which differs from numpy's by half a gap between order statistics.
    """
    stride = max(1, residuals.shape[1] // SCALE_SAMPLE)
    sample = residuals[:, ::stride]
    middle = sample.shape[1] // 2
    median = np.partition(sample, middle, axis=1)[:, middle : middle + 1]
    deviation = np.abs(sample - median)
    mad = np.partition(deviation, middle, axis=1)[:, middle]
    return np.maximum(MAD_TO_SIGMA * mad.astype(np.float64), MIN_SCALE)


def irls(
    products: np.ndarray,
    targets: np.ndarray,
    prior: np.ndarray | None,
    coefficients: np.ndarray | None,
    epsilon: float,
    max_iterations: int,
    tolerance: float,
):
    """Huber IRLS on normalised coordinates, from ``coefficients`` or from least squares.

    ``products`` is ``(6, N)`` = [1, x, y, x^2, xy, y^2] with x, y in about [-1, 1],
    ``targets`` ``(2, N)``. Returns the coefficients ``(2, 3)``, the residual scales ``(2,)``,
    the residuals ``(2, N)`` and the iteration count.
    """
    design = products[:3]
    iterations = 0
    if coefficients is None:
        # Cold start from the median flow (a constant model): with a large coherent outlier
        # group, least squares lands between the motions, and the MAD of its residuals then
        # inflates the Huber threshold enough for the fit to stay there; the median sits on
        # the majority motion (breakdown point 50%).
        coefficients = np.zeros((2, 3))
        coefficients[:, 0] = [np.median(targets[0]), np.median(targets[1])]
    residuals = targets - coefficients.astype(np.float32) @ design
    if max_iterations < 1:
        return coefficients, robust_scales(residuals), residuals, iterations
    weights, scale = _huber_weights(residuals, epsilon)
    for iteration in range(1, max_iterations + 1):
        coefficients, change = _weighted_solve(products, targets, prior, weights, coefficients)
        iterations += 1
        residuals = targets - coefficients.astype(np.float32) @ design
        if change < tolerance or iteration == max_iterations:
            scale = robust_scales(residuals)  # the weights would not be used again
            break
        weights, scale = _huber_weights(residuals, epsilon)
    return coefficients, scale, residuals, iterations


def _weighted_solve(
    products: np.ndarray,
    targets: np.ndarray,
    prior: np.ndarray | None,
    weights: np.ndarray,
    previous: np.ndarray,
):
    """Weighted least squares of both components: the two 3x3 normal-equation systems.

    Returns the coefficients ``(2, 3)`` and the largest change of the model flow from
    ``previous`` over the normalised domain [-1, 1]^2, in pixels.
    """
    if prior is not None:
        weights = weights * prior[None]
    sums = (weights @ products.T).astype(np.float64)  # (2, 6): both components at once
    right = ((weights * targets) @ products[:3].T).astype(np.float64)  # (2, 3)
    # Both symmetric 3x3 systems at once, from the six sums per component.
    normal = sums[:, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(2, 3, 3)
    try:
        coefficients = np.linalg.solve(normal, right[..., None])[..., 0]
    except np.linalg.LinAlgError:
        # Degenerate point sets (all on a line, or 1-2 distinct points): minimum-norm solution.
        coefficients = np.stack(
            [np.linalg.lstsq(n, r, rcond=None)[0] for n, r in zip(normal, right, strict=True)]
        )
    return coefficients, float(np.abs(coefficients - previous).sum(axis=1).max())


def _huber_weights(residuals: np.ndarray, epsilon: float):
    """IRLS weights ``min(1, epsilon * scale / |r|)`` and the MAD scales, per component.

    ``residuals`` is ``(2, N)``; returns weights ``(2, N)`` float32 and scales ``(2,)``.
    """
    scale = robust_scales(residuals)
    threshold = (epsilon * scale).astype(np.float32)[:, None]
    weights = np.abs(residuals)
    np.maximum(weights, threshold, out=weights)
    np.divide(threshold, weights, out=weights)
    return weights, scale


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative values (computed on a 256-bin histogram)."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    scaled = np.round(255 * values / top).astype(np.uint8)
    level, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu puts bins <= level in the low class: the boundary is half a bin above it.
    return (float(level) + 0.5) * top / 255
