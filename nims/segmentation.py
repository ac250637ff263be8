"""Step 2 of NIMS: from a relevance map to candidate regions, and the choice of salient regions.

Two methods, registered in :data:`STEP2_METHODS` and picked by the ``step2`` config group:

- ``light``: points whose flow projects onto the relevance-weighted mean flow within
  ``(alpha1, alpha2)`` (the paper's light version, used for the crowd task);
- ``hierarchical``: affine motion layers peeled off one by one with a robust fit, then
  connected components of each layer (used for the independent-motion task).

Both return candidate regions; :func:`select_salient_regions` keeps those more relevant than
the largest candidate region (R_sal, possibly empty or several): by mean relevance alone (the
paper) or also by their share of the frame's relevance (our default).
:data:`SELECTION_RULES` lists the choices (``step2.selection``).
All maps are at the flow's resolution: flow ``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Optional, Tuple

import cv2
import numpy as np

from nims.flow import check_flow
from nims.motion import (HUBER_EPSILON, AffineMotion, fit_affine_with_residuals, pixel_grid,
                         robust_scale)
from nims.registry import Registry

STEP2_METHODS: Registry = Registry("step 2 method")


@dataclass
class Segmentation:
    """What step 2 produces for one frame.

    Attributes
    ----------
    candidate_regions : array, shape (H, W), int32
        Region labels 1..K; 0 marks pixels in no candidate region (regions under the minimum
        size).
    region_scores : array, shape (K + 1,)
        Mean relevance of each region (index 0 unused, NaN).
    salient_labels : array of int
        Labels of the regions kept as salient (R_sal).
    salient_mask : array, shape (H, W), bool
        Union of the salient regions.
    layers : array, shape (H, W), int32, optional
        Hierarchical step only: motion layer of every pixel (1 = first peeled, last = leftovers).
    layer_motions : list of AffineMotion
        Hierarchical step only: the model of each fitted layer; the first one describes the
        dominant (usually background) motion and is a good start for the saliency map's fit.
    """

    candidate_regions: np.ndarray
    region_scores: np.ndarray
    salient_labels: np.ndarray
    salient_mask: np.ndarray
    layers: Optional[np.ndarray] = None
    layer_motions: List[AffineMotion] = field(default_factory=list)


def check_relevance(relevance: np.ndarray, shape) -> np.ndarray:
    """Validate a relevance map against the flow's ``(H, W)`` and return it as float64."""
    relevance = np.asarray(relevance)
    if relevance.shape != tuple(shape):
        raise ValueError(
            f"relevance shape {relevance.shape} does not match the flow's {tuple(shape)}: "
            "resize the relevance map to the flow's resolution first"
        )
    relevance = relevance.astype(np.float64)
    if not np.isfinite(relevance).all():
        raise ValueError("relevance holds NaN or infinite values")
    return relevance


def _positive(value: float, key: str) -> float:
    if not value > 0:
        raise ValueError(f"{key} must be > 0, got {value}")
    return float(value)


def _non_negative_int(value: int, key: str) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"{key} must be a non-negative integer, got {value}")
    return int(value)


SELECTION_RULES = ("paper", "relevance_mass")


def select_salient_regions(candidate_regions: np.ndarray, relevance: np.ndarray,
                           rule: str = "relevance_mass", min_share: float = 0.1):
    """Keep the candidate regions that are more relevant than the largest (background) region.

    ``rule="paper"``: regions whose mean relevance beats that of the largest region. Mean
    relevance favours tiny regions: a few pixels under one relevance blob outscore the object
    it sits on. ``rule="relevance_mass"`` (our default, beyond the paper) also asks a region to
    hold at least ``min_share`` of the frame's positive relevance, so R_sal is made of the
    regions that carry the classifier's evidence, not of specks that happen to touch it.

    Parameters
    ----------
    candidate_regions : array, shape (H, W), int
        Labels 1..K, 0 for pixels outside every region.
    relevance : array, shape (H, W)
        Relevance map.
    rule : {"paper", "relevance_mass"}
    min_share : float in [0, 1)
        ``relevance_mass`` only: the least share of the frame's positive relevance (summed over
        the region's pixels) a salient region holds.

    Returns
    -------
    region_scores : array, shape (K + 1,)
        Mean relevance per label (NaN for label 0 and empty labels).
    salient_labels : array of int
        Labels kept (never the largest region itself); empty when there is no region or all
        scores tie (e.g. constant relevance).
    salient_mask : array, shape (H, W), bool
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"step2.selection must be one of {SELECTION_RULES}, got {rule!r}")
    if not 0 <= min_share < 1:
        raise ValueError(f"step2.min_share must be in [0, 1), got {min_share}")
    labels = candidate_regions.ravel()
    count = int(labels.max(initial=0)) + 1
    sizes = np.bincount(labels, minlength=count)
    totals = np.bincount(labels, weights=relevance.ravel(), minlength=count)
    scores = np.full(count, np.nan)
    present = sizes > 0
    scores[present] = totals[present] / sizes[present]
    scores[0] = np.nan
    if count <= 1:
        return scores, np.zeros(0, dtype=np.int64), np.zeros(candidate_regions.shape, dtype=bool)
    largest = 1 + int(np.argmax(sizes[1:]))
    keep = np.zeros(count, dtype=bool)
    keep[1:] = np.nan_to_num(scores[1:], nan=-np.inf) > scores[largest]
    if rule == "relevance_mass":
        positive = np.clip(relevance, 0, None)
        mass = np.bincount(labels, weights=positive.ravel(), minlength=count)
        keep &= mass > min_share * positive.sum()
    return scores, np.flatnonzero(keep), keep[candidate_regions]


def connected_regions(labels: np.ndarray, min_region: int = 0, connectivity: int = 8) -> np.ndarray:
    """Split every label of a map into its connected components, dropping the small ones.

    Parameters
    ----------
    labels : array, shape (H, W), int
        Layer (or class) labels; 0 is treated as background and never forms a region.
    min_region : int
        Components with fewer pixels become 0.
    connectivity : {4, 8}

    Returns
    -------
    array, shape (H, W), int32
        Region labels 1..K numbered layer by layer, 0 for dropped or background pixels.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    regions = np.zeros(labels.shape, dtype=np.int32)
    offset = 0
    present = np.flatnonzero(np.bincount(labels.ravel()))
    for layer in present[present > 0]:
        count, components = cv2.connectedComponents((labels == layer).view(np.uint8),
                                                    connectivity=connectivity, ltype=cv2.CV_32S)
        np.add(components, offset, out=regions, where=components > 0)
        offset += count - 1
    sizes = np.bincount(regions.ravel(), minlength=offset + 1)
    kept = sizes >= max(min_region, 1)
    kept[0] = False
    relabel = (np.cumsum(kept) * kept).astype(np.int32)
    return relabel[regions]


def motion_layers(flow: np.ndarray, beta: float = 1.6, scale: str = "std", min_outliers: int = 50,
                  max_layers: int = 32, epsilon: float = HUBER_EPSILON) -> np.ndarray:
    """The layer map of :func:`peel_motion_layers` alone, ``(H, W)`` int32."""
    return peel_motion_layers(flow, beta, scale, min_outliers, max_layers, epsilon)[0]


def peel_motion_layers(flow: np.ndarray, beta: float = 1.6, scale: str = "std",
                       min_outliers: int = 50, max_layers: int = 32,
                       epsilon: float = HUBER_EPSILON) -> Tuple[np.ndarray, List[AffineMotion]]:
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
    beta = _positive(beta, "step2.beta")
    min_outliers = _non_negative_int(min_outliers, "step2.min_outliers")
    max_layers = _non_negative_int(max_layers, "step2.max_layers")
    if max_layers < 1:
        raise ValueError("step2.max_layers must be >= 1: with no layer fitted every pixel is "
                         "one leftover region and nothing can be salient")
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
        motion, residuals = fit_affine_with_residuals(cols[index], rows[index], values[index, 0],
                                                      values[index, 1], epsilon=epsilon)
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


@STEP2_METHODS.register("hierarchical")
def hierarchical_step(flow: np.ndarray, relevance: np.ndarray, beta: float = 1.6,
                      scale: str = "std", min_outliers: int = 50, min_region: int = 50,
                      max_layers: int = 32, connectivity: int = 8,
                      epsilon: float = HUBER_EPSILON, selection: str = "relevance_mass",
                      min_share: float = 0.1, **_: object) -> Segmentation:
    """Hierarchical step 2: motion layers -> connected components -> salient regions.

    Parameters are those of :func:`motion_layers` plus ``min_region`` (pixels; smaller
    connected components are not candidates), ``connectivity`` (4 or 8), and ``selection`` and
    ``min_share`` of :func:`select_salient_regions`.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    layers, motions = peel_motion_layers(flow, beta, scale, min_outliers, max_layers, epsilon)
    candidate_regions = connected_regions(layers, _non_negative_int(min_region, "step2.min_region"),
                                          connectivity)
    scores, salient_labels, salient_mask = select_salient_regions(candidate_regions, relevance,
                                                                  selection, min_share)
    return Segmentation(candidate_regions, scores, salient_labels, salient_mask, layers, motions)


def relevant_flow_modes(flow: np.ndarray, relevance: np.ndarray, modes: int = 1,
                        iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Relevance²-weighted mean flow vectors: one (``modes=1``) or K by weighted k-means.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
    relevance : array, shape (H, W)
    modes : int
        Number of motion modes K. The paper uses one mean; several salient motions in different
        directions cancel out in one mean, so K > 1 clusters the relevant flow vectors.
    iterations : int
        Lloyd iterations of the weighted k-means.
    seed : int
        Seed of the k-means++ initialisation.

    Returns
    -------
    array, shape (K', 2)
        Mode flow vectors in pixels; K' <= K (empty clusters dropped), 0 rows when the
        relevance is zero everywhere.
    """
    modes = _non_negative_int(modes, "step2.modes")
    if modes < 1:
        raise ValueError("step2.modes must be >= 1")
    weights = relevance.ravel() ** 2
    total = weights.sum()
    if total <= 0:
        return np.zeros((0, 2))
    vectors = flow.reshape(-1, 2).astype(np.float64)
    if modes == 1:
        return (weights @ vectors / total)[None]
    support = np.flatnonzero(weights > 0)
    vectors, weights = vectors[support], weights[support]
    rng = np.random.default_rng(seed)
    centres = [vectors[rng.choice(len(vectors), p=weights / weights.sum())]]
    for _ in range(1, modes):
        distance = np.min([((vectors - c) ** 2).sum(axis=1) for c in centres], axis=0)
        probability = weights * distance
        if probability.sum() <= 0:
            break
        centres.append(vectors[rng.choice(len(vectors), p=probability / probability.sum())])
    centres = np.array(centres)
    for _ in range(iterations):
        distance = ((vectors[:, None, :] - centres[None]) ** 2).sum(axis=2)
        assignment = distance.argmin(axis=1)
        mass = np.bincount(assignment, weights=weights, minlength=len(centres))
        sums = np.stack([np.bincount(assignment, weights=weights * vectors[:, k],
                                     minlength=len(centres)) for k in range(2)], axis=1)
        filled = mass > 0
        updated = centres.copy()
        updated[filled] = sums[filled] / mass[filled, None]
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.bincount(assignment, weights=weights, minlength=len(centres)) > 0]


def projection_candidates(flow: np.ndarray, mode: np.ndarray, alpha1: float, alpha2: float,
                          projection: str = "normalised") -> np.ndarray:
    """Points whose flow projects onto a mode vector ``m`` within ``(alpha1, alpha2)``.

    ``projection="normalised"`` (default) tests ``w . m / |m|^2 - 1``: the projection in units
    of the mode's length, minus one, so thresholds do not depend on the flow's magnitude or
    resolution. ``projection="literal"`` tests the paper's printed ``w . m / |m| - 1`` (pixels).

    Returns
    -------
    array, shape (H, W), bool
    """
    norm = float(np.hypot(*mode))
    if norm == 0:
        return np.zeros(flow.shape[:2], dtype=bool)
    dot = flow[..., 0] * mode[0] + flow[..., 1] * mode[1]
    if projection == "normalised":
        value = dot / norm**2 - 1
    elif projection == "literal":
        value = dot / norm - 1
    else:
        raise ValueError(f"step2.projection must be 'normalised' or 'literal', got {projection!r}")
    return (value > alpha1) & (value < alpha2)


@STEP2_METHODS.register("light")
def light_step(flow: np.ndarray, relevance: np.ndarray, alpha1: float = -0.01, alpha2: float = 4.0,
               projection: str = "normalised", modes: int = 1, min_region: int = 50,
               connectivity: int = 8, seed: int = 0, selection: str = "relevance_mass",
               min_share: float = 0.1, **_: object) -> Segmentation:
    """Light step 2: points moving like the relevant flow.

    The candidate points (:func:`projection_candidates` for each mode of
    :func:`relevant_flow_modes`) and the other pixels are split into connected components, all
    candidate regions; the largest is normally the background, and the selection keeps the
    regions more relevant than it.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    if not alpha1 < alpha2:
        raise ValueError(f"step2.alpha1 ({alpha1}) must be smaller than step2.alpha2 ({alpha2})")
    candidates = np.zeros(flow.shape[:2], dtype=bool)
    for mode in relevant_flow_modes(flow, relevance, modes, seed=seed):
        candidates |= projection_candidates(flow, mode, alpha1, alpha2, projection)
    # Label 1 = not a candidate point, 2 = candidate point; components are then taken per label.
    candidate_regions = connected_regions(candidates.astype(np.int32) + 1,
                                          _non_negative_int(min_region, "step2.min_region"),
                                          connectivity)
    scores, salient_labels, salient_mask = select_salient_regions(candidate_regions, relevance,
                                                                  selection, min_share)
    return Segmentation(candidate_regions, scores, salient_labels, salient_mask)


def segment(flow: np.ndarray, relevance: np.ndarray, step2_cfg) -> Segmentation:
    """Run the step 2 method a ``step2`` config node names on one frame.

    A key no step 2 method takes (e.g. a misspelt ``+step2.betta=1``) is an error naming it,
    never silently ignored; a key of another method (``beta`` for the light step, as
    ``experiment=paper`` sets it for both) is left to that method.
    """
    options = dict(step2_cfg)
    name = options.pop("name")
    method = STEP2_METHODS.get(name)
    known = {key for other in STEP2_METHODS.names() for key in _settings(other)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"step2={name} has no setting {', '.join('step2.' + k for k in unknown)}"
                         f"; its settings are {', '.join(_settings(name))}")
    accepted = set(_settings(name))
    return method(flow, relevance, **{k: v for k, v in options.items() if k in accepted})


@lru_cache(maxsize=None)
def _settings(name: str) -> Tuple[str, ...]:
    """The config keys the step 2 method ``name`` takes (its keyword parameters)."""
    import inspect

    return tuple(parameter for parameter in inspect.signature(STEP2_METHODS.get(name)).parameters
                 if parameter not in ("flow", "relevance", "_"))
