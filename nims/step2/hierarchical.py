"""Step 2, hierarchical version (``step2=hierarchical``, the independent-motion task): affine
motion layers peeled off one by one with a Huber-robust fit (a pixel is an inlier of a layer when
its residual is below ``beta`` times the residual scale), then the connected components of each
layer are the candidate regions. Maps at the flow's resolution: flow ``(H, W, 2)`` in pixels,
relevance ``(H, W)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nims.epipolar import parallax_share
from nims.flow import check_flow
from nims.motion import AffineMotion, fit_affine_with_residuals, pixel_grid
from nims.robust import HUBER_EPSILON, otsu_threshold, robust_scale
from nims.step2.base import (
    STEP2_METHODS,
    Segmentation,
    check_relevance,
    connected_regions,
    non_negative_int,
    positive,
    segment,
    select_salient_regions,
)


def motion_layers(
    flow: np.ndarray,
    beta: float = 1.2,
    scale: str = "std",
    min_outliers: int = 50,
    max_layers: int = 32,
    epsilon: float = HUBER_EPSILON,
) -> np.ndarray:
    """The layer map of :func:`peel_motion_layers` alone, ``(H, W)`` int32."""
    return peel_motion_layers(flow, beta, scale, min_outliers, max_layers, epsilon)[0]


def peel_motion_layers(
    flow: np.ndarray,
    beta: float = 1.2,
    scale: str = "std",
    min_outliers: int = 50,
    max_layers: int = 32,
    epsilon: float = HUBER_EPSILON,
) -> tuple[np.ndarray, list[AffineMotion]]:
    """Peel affine motion layers off a flow field (the paper's hierarchical step).

    At each iteration a Huber-robust affine model is fitted to the points not yet assigned; a
    point is an inlier when ``0.5 * (|du| / s_u + |dv| / s_v) < beta``, with ``du, dv`` its
    residuals and ``s_u, s_v`` the scales of the residuals of all remaining points at this
    iteration; inliers form the next layer. It stops when at most ``min_outliers`` points remain
    (they form the last layer), when no point is an inlier, or after ``max_layers`` layers.

    The paper writes the scale as the standard deviation of the residuals (``scale="std"``, the
    default). Because the outliers of the current layer are part of that standard deviation, a
    layer covering a large share of the frame inflates it, and the first layer then swallows
    moving objects whose residual is only ~1-2 std; ``scale="mad"`` (1.4826 x median absolute
    deviation) measures the inliers' spread alone. Both readings are scale-invariant.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    beta : float
        Inlier threshold, in units of residual scale (paper: 1.6).
    scale : {"std", "mad"}
    min_outliers : int
        Stop when this many points or fewer remain (paper: 50).
    max_layers : int
        Safety cap on the number of fitted layers.
    epsilon : float
        Huber threshold of the affine fits.

    Returns
    -------
    layers : array, shape (H, W), int32
        Layer of each pixel, 1 for the first peeled; leftovers get the last label.
    motions : list of AffineMotion
        The model of each fitted layer (leftovers have none).
    """
    flow = check_flow(flow)
    beta = positive(beta, "step2.beta")
    min_outliers = non_negative_int(min_outliers, "step2.min_outliers")
    max_layers = non_negative_int(max_layers, "step2.max_layers")
    if max_layers < 1:
        raise ValueError(
            "step2.max_layers must be >= 1: with no layer fitted every pixel is "
            "one leftover region and nothing can be salient"
        )
    if scale not in ("std", "mad"):
        raise ValueError(f"step2.scale must be 'std' or 'mad', got {scale!r}")
    height, width = flow.shape[:2]
    cols, rows = pixel_grid(height, width)
    values = flow.reshape(-1, 2)
    layer_of = np.zeros(height * width, dtype=np.int32)
    remaining = np.arange(height * width)
    motions = []
    while remaining.size > max(min_outliers, 2) and len(motions) < max_layers:
        # The first layer is fitted on every pixel: no need to gather copies.
        index = slice(None) if remaining.size == height * width else remaining
        motion, residuals = fit_affine_with_residuals(
            cols[index],
            rows[index],
            values[index, 0],
            values[index, 1],
            epsilon=epsilon,
            full_iterations=0,
        )
        absolute = np.abs(residuals)
        score = (0.5 / robust_scale(residuals[0], scale)) * absolute[0]
        score += (0.5 / robust_scale(residuals[1], scale)) * absolute[1]
        inliers = score < beta
        if not inliers.any():
            break
        motions.append(motion)
        layer_of[remaining[inliers]] = len(motions)
        remaining = remaining[~inliers]
    if remaining.size:
        layer_of[remaining] = len(motions) + 1
    return layer_of.reshape(height, width), motions


def shows_parallax(flow: np.ndarray, ratio: float, min_residual: float, min_share: float) -> bool:
    """Whether the flow ``(H, W, 2)`` shows parallax: at least ``min_share`` of its pixels are
    missed by a robust homography by more than ``min_residual`` pixels and more than ``ratio``
    times by a robust epipolar geometry (:func:`nims.epipolar.parallax_share`)."""
    ratio = positive(ratio, "step2.parallax_ratio")
    min_residual = positive(min_residual, "step2.parallax_min_residual")
    min_share = positive(min_share, "step2.parallax_min_share")
    return parallax_share(flow, min_residual, ratio) >= min_share


def residual_split_layers(layers: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Layer labels split in two where the residual to the dominant motion crosses Otsu's level.

    Parameters
    ----------
    layers : array, shape (H, W), int
        Layer labels >= 1 (:func:`peel_motion_layers`).
    residual : array, shape (H, W)
        ``|w - w_dominant|``, pixels: the flow's residual to the first layer's model.

    Returns
    -------
    array, shape (H, W), int32
        ``2 * layer + moving``, with ``moving`` 1 where ``|w - w_dominant|`` exceeds Otsu's
        threshold of that residual over the frame (the dominant-motion baseline's test): labels
        >= 2, one per (layer, side of the threshold).
    """
    moving = residual > otsu_threshold(residual)
    return (2 * layers + moving).astype(np.int32)


def spread_samples(labels: np.ndarray, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Labels of a grid sampled every ``stride`` pixels spread to the ``(H, W)`` pixels: each
    pixel takes the label of the sample heading its block."""
    spread = np.repeat(np.repeat(labels, stride, axis=0), stride, axis=1)
    return np.ascontiguousarray(spread[: shape[0], : shape[1]])


EVIDENCE = ("relevance", "relevance_x_residual")
DEFAULT_EVIDENCE = "relevance_x_residual"


def weighs_by_residual(step2_cfg: Mapping[str, object]) -> bool:
    """Whether a ``step2`` config node's selection weighs the relevance by the flow's residual
    (the hierarchical step with ``evidence=relevance_x_residual``, its default when the node
    leaves the key out)."""
    if step2_cfg.get("name") != "hierarchical":
        return False
    return step2_cfg.get("evidence", DEFAULT_EVIDENCE) == "relevance_x_residual"


@STEP2_METHODS.register("hierarchical")
def hierarchical_step(
    flow: np.ndarray,
    relevance: np.ndarray,
    beta: float = 1.2,
    scale: str = "std",
    min_outliers: int = 50,
    min_region: int = 50,
    max_layers: int = 32,
    connectivity: int = 8,
    epsilon: float = HUBER_EPSILON,
    selection: str = "relevance_mass",
    min_share: float = 0.05,
    residual_split: bool = True,
    parallax_ratio: float | None = 1024.0,
    parallax_min_residual: float = 0.2,
    parallax_min_share: float = 0.01,
    parallax_step: Mapping[str, object] | None = None,
    evidence: str = DEFAULT_EVIDENCE,
    stride: int = 2,
    **_: object,
) -> Segmentation:
    """Hierarchical step 2: motion layers -> connected components -> salient regions.

    Parameters are those of :func:`motion_layers` plus ``min_region`` (pixels; smaller
    connected components are not candidates), ``connectivity`` (4 or 8), and ``selection`` and
    ``min_share`` of :func:`select_salient_regions`.

    Beyond the paper: ``stride`` > 1 peels the layers and forms the regions on every
    ``stride``-th pixel in each direction, and selects them there (the relevance read at the
    samples); each pixel then takes the region of the sample heading its block, and the motions
    are read back at pixel coordinates. 1: every pixel, as the paper.

    Beyond the paper: ``evidence`` is the map the selection weighs: ``"relevance"`` (the
    paper), or ``"relevance_x_residual"``, the positive relevance times the flow's residual to
    the first layer's motion (pixels): the classifier says where the salient motion is, the
    residual how much of the region moves unlike the background, so the parts of an object that
    the relevance covers thinly are kept with it.

    Beyond the paper: with ``residual_split`` each layer is also split where the flow's residual
    to the first layer's (dominant) motion crosses Otsu's level (:func:`residual_split_layers`),
    so that an object whose motion is close to the background's, and which the first layer
    half-swallows, still gets regions of its own.

    Beyond the paper: a frame whose flow shows parallax gets the step 2 that the config node
    ``parallax_step`` names instead (``step2=epipolar``'s settings): affine layers cannot tell
    a slow mover from the parallax of near static objects; the epipolar test can, when the flow
    is precise enough to show it (:func:`shows_parallax`, with ``parallax_ratio``,
    ``parallax_min_residual`` and ``parallax_min_share``). ``parallax_ratio`` None: affine
    layers on every frame (the paper); ``parallax_step`` None: ``step2=epipolar`` with its
    defaults.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    if evidence not in EVIDENCE:
        raise ValueError(f"step2.evidence must be one of {EVIDENCE}, got {evidence!r}")
    stride = non_negative_int(stride, "step2.stride")
    if stride < 1:
        raise ValueError("step2.stride must be >= 1 (1: every pixel)")
    if parallax_ratio is not None and shows_parallax(
        flow, parallax_ratio, parallax_min_residual, parallax_min_share
    ):
        try:
            return segment(flow, relevance, parallax_step or {"name": "epipolar"})
        except ValueError as error:
            raise ValueError(f"step2.parallax_step: {error}") from error
    sampled = np.ascontiguousarray(flow[::stride, ::stride])
    layers, motions = peel_motion_layers(sampled, beta, scale, min_outliers, max_layers, epsilon)
    # The residual to the first layer's motion, read by the split and by the evidence.
    residual = motions[0].residual_magnitude(sampled) if motions else None
    labels = layers
    if residual_split and residual is not None:
        labels = residual_split_layers(layers, residual)
    # A sample stands for the stride x stride block of pixels it heads: regions, evidence and
    # the selection on the samples, then spread to every pixel.
    min_samples = -(-non_negative_int(min_region, "step2.min_region") // stride**2)
    candidate_regions = connected_regions(labels, min_samples, connectivity)
    chosen_by = relevance[::stride, ::stride]
    if evidence == "relevance_x_residual" and residual is not None:
        chosen_by = np.maximum(chosen_by, 0) * residual
    scores, salient_labels, salient_mask = select_salient_regions(
        candidate_regions, chosen_by, selection, min_share
    )
    if stride > 1:
        candidate_regions, layers, salient_mask = (
            spread_samples(samples, stride, flow.shape[:2])
            for samples in (candidate_regions, layers, salient_mask)
        )
        motions = [motion.on_grid_of_stride(stride) for motion in motions]
    return Segmentation(candidate_regions, scores, salient_labels, salient_mask, layers, motions)
