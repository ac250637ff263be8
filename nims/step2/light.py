"""Step 2, light version (``step2=light``, the crowd task): candidate points grouped into
connected regions. The paper's candidates (``step2.candidates=projection``): the
relevance-squared-weighted mean flow is the salient motion mode, and points whose flow projects
onto it within ``(alpha1, alpha2)`` are candidates; ours (``contrast``, the default): points
moving against the crowd (:mod:`nims.step2.contrast`). Maps at the flow's resolution: flow
``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from __future__ import annotations

import numpy as np

from nims.flow import check_flow
from nims.step2.base import (
    STEP2_METHODS,
    Segmentation,
    check_relevance,
    non_negative_int,
    split_and_select,
)
from nims.step2.contrast import contrast_candidates


def relevant_flow_modes(
    flow: np.ndarray, relevance: np.ndarray, modes: int = 1, iterations: int = 20, seed: int = 0
) -> np.ndarray:
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
    modes = non_negative_int(modes, "step2.modes")
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
        sums = np.stack(
            [
                np.bincount(assignment, weights=weights * vectors[:, k], minlength=len(centres))
                for k in range(2)
            ],
            axis=1,
        )
        filled = mass > 0
        updated = centres.copy()
        updated[filled] = sums[filled] / mass[filled, None]
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.bincount(assignment, weights=weights, minlength=len(centres)) > 0]


def projection_candidates(
    flow: np.ndarray, mode: np.ndarray, alpha1: float, alpha2: float, projection: str = "normalised"
) -> np.ndarray:
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
def light_step(
    flow: np.ndarray,
    relevance: np.ndarray,
    alpha1: float = -0.01,
    alpha2: float = 4.0,
    projection: str = "normalised",
    modes: int = 1,
    min_region: int = 50,
    connectivity: int = 8,
    seed: int = 0,
    selection: str = "relevance_mass",
    min_share: float = 0.1,
    candidates: str = "projection",
    min_motion: float = 0.8,
    min_angle: float = 60.0,
    noise_factor: float = 3.0,
    **_: object,
) -> Segmentation:
    """Light step 2: points moving like the relevant flow, or against the crowd.

    ``candidates="projection"`` (the paper): the candidate points are
    :func:`projection_candidates` for each mode of :func:`relevant_flow_modes`;
    ``candidates="contrast"`` (beyond the paper): the points moving against the crowd,
    :func:`nims.step2.contrast.contrast_candidates` with ``min_motion``, ``min_angle`` and
    ``noise_factor``. Candidate points and the other pixels are split into connected
    components, all candidate regions; the largest is normally the background, and the
    selection keeps the regions more relevant than it.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    if candidates == "contrast":
        points = contrast_candidates(flow, min_motion, min_angle, noise_factor)
    elif candidates == "projection":
        if not alpha1 < alpha2:
            raise ValueError(
                f"step2.alpha1 ({alpha1}) must be smaller than step2.alpha2 ({alpha2})"
            )
        points = np.zeros(flow.shape[:2], dtype=bool)
        for mode in relevant_flow_modes(flow, relevance, modes, seed=seed):
            points |= projection_candidates(flow, mode, alpha1, alpha2, projection)
    else:
        raise ValueError(f"step2.candidates must be 'projection' or 'contrast', got {candidates!r}")
    return split_and_select(points, relevance, min_region, connectivity, selection, min_share)
