"""Robust estimation of the 6-parameter affine motion model (eq. 1 of the paper).

The model, in pixels at the flow's resolution, with ``x`` the column and ``y`` the row::

    u(x, y) = a1 + a2 x + a3 y
    v(x, y) = a4 + a5 x + a6 y

Each component is fitted by minimising the Huber loss of its residuals with iteratively
reweighted least squares (IRLS): every iteration solves a 3x3 weighted normal-equation system in
closed form, so a fit on 400k points costs a few matrix-vector products. The residual scale used
by the Huber threshold is the normalised median absolute deviation (MAD), re-estimated at each
iteration. scikit-learn's ``HuberRegressor`` (which estimates the scale jointly) is kept in
:mod:`nims.reference` as the test oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD of a standard normal is 1 / 1.4826
HUBER_EPSILON = 1.35  # scikit-learn's default: 95% efficiency under Gaussian noise
SCALE_SAMPLE = 4096  # points used to estimate a residual scale (strided, deterministic)
COARSE_POINTS = 32768  # points of the coarse IRLS stage
MIN_SCALE = 0.01  # pixels; below any flow's accuracy, above the fits' convergence tolerance


@dataclass
class AffineMotion:
    """An affine motion model fitted to a flow field.

    Attributes
    ----------
    params : array, shape (2, 3)
        ``[[a1, a2, a3], [a4, a5, a6]]``: ``u = a1 + a2 x + a3 y``, ``v = a4 + a5 x + a6 y`` with
        ``x, y`` pixel column / row and ``u, v`` in pixels.
    scale : array, shape (2,)
        Robust scale (pixels) of the ``u`` and ``v`` residuals at convergence.
    iterations : int
        IRLS iterations used.
    """

    params: np.ndarray
    scale: np.ndarray
    iterations: int

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Model flow at pixel coordinates ``x, y`` (any equal shapes) -> shape ``(..., 2)``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        u = self.params[0, 0] + self.params[0, 1] * x + self.params[0, 2] * y
        v = self.params[1, 0] + self.params[1, 1] * x + self.params[1, 2] * y
        return np.stack([u, v], axis=-1)

    def flow(self, shape: Tuple[int, int]) -> np.ndarray:
        """Model flow on a full ``(height, width)`` grid -> ``(H, W, 2)`` float32 pixels."""
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        return self.at(cols, rows).astype(np.float32)


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


def fit_affine_points(
    x: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    weights: Optional[np.ndarray] = None,
    epsilon: float = HUBER_EPSILON,
    max_iterations: int = 50,
    tolerance: float = 3e-3,
    initial: Optional[AffineMotion] = None,
    full_iterations: int = 1,
) -> AffineMotion:
    """Huber-robust affine fit of point displacements by IRLS.

    Parameters
    ----------
    x, y : arrays, shape (N,)
        Pixel column and row of each point.
    u, v : arrays, shape (N,)
        Displacement of each point in pixels.
    weights : array, shape (N,), optional
        Non-negative confidence of each point, multiplied into the robust weights.
    epsilon : float
        Huber threshold in units of the residual scale (1.35 as scikit-learn).
    max_iterations : int
        Cap on IRLS iterations per stage.
    tolerance : float
        Stop when the model flow changes by less than this many pixels anywhere in the points'
        bounding box.
    initial : AffineMotion, optional
        A model to start from (e.g. the fit of an overlapping point set) instead of the
        median flow.
    full_iterations : int
        IRLS steps on all points after the subset has converged (more than
        :data:`COARSE_POINTS` points only).

    Returns
    -------
    AffineMotion

    Raises
    ------
    ValueError
        With fewer than 3 points, mismatched lengths, non-finite values or bad weights.
    """
    return fit_affine_with_residuals(
        x, y, u, v, weights, epsilon, max_iterations, tolerance, initial, full_iterations
    )[0]


def fit_affine_with_residuals(
    x: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    weights: Optional[np.ndarray] = None,
    epsilon: float = HUBER_EPSILON,
    max_iterations: int = 50,
    tolerance: float = 3e-3,
    initial: Optional[AffineMotion] = None,
    full_iterations: int = 1,
) -> Tuple[AffineMotion, np.ndarray]:
    """:func:`fit_affine_points`, also returning the residuals ``(2, N)`` float32 (pixels)."""
    x, y, u, v = (np.asarray(a).ravel() for a in (x, y, u, v))
    count = x.size
    if not (y.size == u.size == v.size == count):
        raise ValueError(
            f"affine fit: x, y, u, v lengths differ ({x.size}, {y.size}, {u.size}, {v.size})"
        )
    if count < 3:
        raise ValueError(f"an affine fit needs at least 3 points, got {count} (empty or tiny mask)")
    if epsilon <= 0:
        raise ValueError(f"Huber epsilon must be > 0, got {epsilon}")
    # float32 halves the memory traffic of the per-point arrays; the 3x3 systems are solved in
    # float64 and the precision left (~1e-5 relative) is far below the stopping tolerance.
    # Arrays are component-major, (2, N) and (3, N), so every elementwise pass is contiguous.
    targets = np.empty((2, count), dtype=np.float32)
    targets[0] = u
    targets[1] = v
    if not np.isfinite(targets).all():
        raise ValueError("affine fit: NaN or infinite displacements")
    prior = None
    if weights is not None:
        prior = np.asarray(weights, dtype=np.float32).ravel()
        if prior.size != count or not np.isfinite(prior).all() or (prior < 0).any():
            raise ValueError("weights must be finite, non-negative and one per point")
        if prior.sum() <= 0:
            raise ValueError("weights are all zero: nothing to fit")

    # Centre and scale the coordinates so the normal equations stay well conditioned.
    x_min, x_max, y_min, y_max = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    centre_x, centre_y = 0.5 * (x_min + x_max), 0.5 * (y_min + y_max)
    spread = max(0.5 * max(x_max - x_min, y_max - y_min), 1.0)
    # Rows: the six products [1, x, y, x^2, xy, y^2] whose weighted sums form the normal
    # equations; the first three are the design matrix.
    products = np.empty((6, count), dtype=np.float32)
    products[0] = 1.0
    np.multiply(np.subtract(x, centre_x, dtype=np.float32), 1.0 / spread, out=products[1])
    np.multiply(np.subtract(y, centre_y, dtype=np.float32), 1.0 / spread, out=products[2])
    np.multiply(products[1], products[1], out=products[3])
    np.multiply(products[1], products[2], out=products[4])
    np.multiply(products[2], products[2], out=products[5])

    # Coarse to fine: IRLS on an evenly strided subset until it converges, then a few IRLS
    # steps on all points. From a start that is already a consistent estimate, one step gives
    # a one-step M-estimator (Bickel 1975) as efficient as iterating to the end; measured on
    # the RAFT flows of DAVIS blackswan, one step lands within 0.01 px of the full-data fixed
    # point, far below any flow's accuracy, for a third of the cost.
    iterations = 0
    coefficients = None
    if initial is not None:
        coefficients = np.stack(
            [
                [row[0] + row[1] * centre_x + row[2] * centre_y, row[1] * spread, row[2] * spread]
                for row in np.asarray(initial.params, dtype=np.float64)
            ]
        )
    stride = max(1, count // COARSE_POINTS)
    stages = [(slice(None), max_iterations)]
    if stride > 1:
        stages = [
            (slice(None, None, stride), max_iterations),
            (slice(None), min(full_iterations, max_iterations)),
        ]
    for stage, stage_iterations in stages:
        coefficients, scale, residuals, used = _irls(
            np.ascontiguousarray(products[:, stage]),
            np.ascontiguousarray(targets[:, stage]),
            None if prior is None else prior[stage],
            coefficients,
            epsilon,
            stage_iterations,
            tolerance,
        )
        iterations += used

    params = np.empty((2, 3))
    for component in range(2):
        b0, b1, b2 = coefficients[component]
        params[component] = [
            b0 - (b1 * centre_x + b2 * centre_y) / spread,
            b1 / spread,
            b2 / spread,
        ]
    return AffineMotion(params=params, scale=scale, iterations=iterations), residuals


def _irls(
    products: np.ndarray,
    targets: np.ndarray,
    prior: Optional[np.ndarray],
    coefficients: Optional[np.ndarray],
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
    prior: Optional[np.ndarray],
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
            [np.linalg.lstsq(n, r, rcond=None)[0] for n, r in zip(normal, right)]
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


def fit_affine(
    flow: np.ndarray,
    mask: Optional[np.ndarray] = None,
    weights: Optional[np.ndarray] = None,
    **options,
) -> AffineMotion:
    """Huber-robust affine fit of a flow field, optionally restricted to a mask.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    mask : array, shape (H, W), bool, optional
        Pixels to fit; all pixels when omitted.
    weights : array, shape (H, W), optional
        Per-pixel confidence.
    **options
        Passed to :func:`fit_affine_points`.
    """
    height, width = flow.shape[:2]
    cols, rows = pixel_grid(height, width)
    values = flow.reshape(-1, 2)
    if mask is None:
        index = slice(None)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"mask shape {mask.shape} does not match flow shape {(height, width)}")
        index = np.flatnonzero(mask)
    point_weights = None if weights is None else np.asarray(weights).reshape(-1)[index]
    return fit_affine_points(
        cols[index], rows[index], values[index, 0], values[index, 1], point_weights, **options
    )


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Column and row coordinates of every pixel in raster order: two read-only (H*W,) float32."""
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    cols, rows = cols.astype(np.float32), rows.astype(np.float32)
    cols.flags.writeable = False
    rows.flags.writeable = False
    return cols, rows
