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

import cv2
import numpy as np

from nims.robust import HUBER_EPSILON, irls

COARSE_POINTS = 4096  # points of the coarse IRLS stage


def coarse_stride(count: int) -> int:
    """Step of the evenly strided subset of ``count`` points that the coarse IRLS stage fits:
    at least :data:`COARSE_POINTS` points, all of them when there are fewer than twice that."""
    return max(1, count // COARSE_POINTS)


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

    def flow(self, shape: tuple[int, int]) -> np.ndarray:
        """Model flow on a full ``(height, width)`` grid -> ``(H, W, 2)`` float32 pixels."""
        model = np.empty((shape[0], shape[1], 2), dtype=np.float32)
        for component, values in enumerate(self._components(shape[0], shape[1])):
            model[..., component] = values
        return model

    def _components(self, height: int, width: int) -> list[np.ndarray]:
        """The model's ``u`` and ``v`` on the pixel grid, each ``(H, W)`` float32: the model is
        separable in x and y, so a row and a column broadcast, never coordinate grids."""
        cols = np.arange(width, dtype=np.float32)[None, :]
        rows = np.arange(height, dtype=np.float32)[:, None]
        return [(a + b * cols) + c * rows for a, b, c in self.params.astype(np.float32)]

    def on_grid_of_stride(self, stride: int) -> AffineMotion:
        """The same motion written for a grid sampled every ``stride`` pixels: a model fitted at
        sample coordinates ``(x / stride, y / stride)`` read back at pixel coordinates, or the
        reverse with ``1 / stride``."""
        params = np.array(self.params, dtype=np.float64)
        params[:, 1:] /= stride
        return AffineMotion(params=params, scale=self.scale, iterations=self.iterations)

    def residual_magnitude(self, flow: np.ndarray) -> np.ndarray:
        """``|w - w_model|`` per pixel of a flow ``(H, W, 2)`` -> ``(H, W)`` float32 pixels.

        Float32 passes over the separable model (a few ms at 854x480, against ~25 for ``flow``
        and a norm)."""
        u, v = self._components(*flow.shape[:2])
        du = (flow[..., 0] - u).astype(np.float32, copy=False)
        dv = (flow[..., 1] - v).astype(np.float32, copy=False)
        return cv2.magnitude(du, dv)


def fit_affine_points(
    x: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    weights: np.ndarray | None = None,
    epsilon: float = HUBER_EPSILON,
    max_iterations: int = 50,
    tolerance: float = 3e-3,
    initial: AffineMotion | None = None,
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


def _checked_points(x, y, u, v, weights, epsilon):
    """The fit's inputs as flat arrays: ``x, y`` (N,), the targets ``(2, N)`` float32 and the
    prior weights (N,) float32 or None; raises ValueError on anything a fit cannot use."""
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
    return x, y, targets, prior


def _centred_products(x: np.ndarray, y: np.ndarray):
    """The six products ``[1, x, y, x^2, xy, y^2]`` ``(6, N)`` float32 of coordinates centred
    on the points' bounding box and scaled by its half-size (so the normal equations stay well
    conditioned), whose weighted sums form the normal equations (the first three rows are the
    design matrix); and ``(centre_x, centre_y, spread)``."""
    x_min, x_max, y_min, y_max = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    centre_x, centre_y = 0.5 * (x_min + x_max), 0.5 * (y_min + y_max)
    spread = max(0.5 * max(x_max - x_min, y_max - y_min), 1.0)
    products = np.empty((6, x.size), dtype=np.float32)
    products[0] = 1.0
    np.multiply(np.subtract(x, centre_x, dtype=np.float32), 1.0 / spread, out=products[1])
    np.multiply(np.subtract(y, centre_y, dtype=np.float32), 1.0 / spread, out=products[2])
    np.multiply(products[1], products[1], out=products[3])
    np.multiply(products[1], products[2], out=products[4])
    np.multiply(products[2], products[2], out=products[5])
    return products, (centre_x, centre_y, spread)


def fit_affine_with_residuals(
    x: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    weights: np.ndarray | None = None,
    epsilon: float = HUBER_EPSILON,
    max_iterations: int = 50,
    tolerance: float = 3e-3,
    initial: AffineMotion | None = None,
    full_iterations: int = 1,
) -> tuple[AffineMotion, np.ndarray]:
    """:func:`fit_affine_points`, also returning the residuals ``(2, N)`` float32 (pixels)."""
    x, y, targets, prior = _checked_points(x, y, u, v, weights, epsilon)
    products, (centre_x, centre_y, spread) = _centred_products(x, y)
    count = x.size

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
    stride = coarse_stride(count)
    stages = [(slice(None), max_iterations)]
    if stride > 1:
        stages = [
            (slice(None, None, stride), max_iterations),
            (slice(None), min(full_iterations, max_iterations)),
        ]
    for stage, stage_iterations in stages:
        coefficients, scale, residuals, used = irls(
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


def fit_affine(
    flow: np.ndarray,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    full_iterations: int = 1,
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
    full_iterations : int
        As :func:`fit_affine_points`; 0 gathers only the coarse stage's points.
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
    if not full_iterations:
        # Only the coarse stage's evenly strided points are read: gather those alone.
        count = height * width if mask is None else index.size
        index = (np.arange(count) if mask is None else index)[:: coarse_stride(count)]
    point_weights = None if weights is None else np.asarray(weights).reshape(-1)[index]
    return fit_affine_points(
        cols[index],
        rows[index],
        values[index, 0],
        values[index, 1],
        point_weights,
        full_iterations=full_iterations,
        **options,
    )


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row coordinates of every pixel in raster order: two read-only (H*W,) float32."""
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    cols, rows = cols.astype(np.float32), rows.astype(np.float32)
    cols.flags.writeable = False
    rows.flags.writeable = False
    return cols, rows
