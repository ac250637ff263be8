"""Step 2, light version (``step2=light``, the crowd task): candidate points grouped into
connected regions. The paper's candidates (``step2.candidates=projection``): the
relevance-squared-weighted mean flow is the salient motion mode, and points whose flow projects
onto it within ``(alpha1, alpha2)`` are candidates; ours (``contrast``, the default): points
moving against the crowd (:mod:`nims.step2.contrast`), tested the paper's way on the flow
once the camera's motion is removed. Maps at the flow's resolution: flow
``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from __future__ import annotations

import numpy as np

from nims.flow import check_flow
from nims.step2.base import (
    STEP2_METHODS,
    Segmentation,
    check_relevance,
    split_and_select,
)
from nims.step2.contrast import camera_residual, contrast_candidates


def relevant_flow(flow: np.ndarray, relevance: np.ndarray) -> np.ndarray | None:
    """The relevance²-weighted mean flow vector ``(2,)`` in pixels: the paper's salient motion
    mode; None when the relevance is zero everywhere.

    Parameters
    ----------
    flow : array, shape (..., 2)
    relevance : array, shape (...)
        The relevance at the same points as ``flow``.
    """
    weights = relevance.ravel().astype(np.float64) ** 2
    total = weights.sum()
    if total <= 0:
        return None
    return weights @ flow.reshape(-1, 2).astype(np.float64) / total


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


# (alpha1, alpha2) of each kind of candidates when step2.alpha1 / step2.alpha2 are null: the
# paper's for its projection candidates; no bound for the contrast candidates, where every
# finite bound measured on crowd_synth's validation videos lowered J (experiments/crowd.md).
DEFAULT_BOUNDS = {"projection": (-0.01, 4.0), "contrast": (-np.inf, np.inf)}


@STEP2_METHODS.register("light")
def light_step(
    flow: np.ndarray,
    relevance: np.ndarray,
    alpha1: float | None = None,
    alpha2: float | None = None,
    projection: str = "normalised",
    min_region: int = 50,
    connectivity: int = 8,
    selection: str = "relevance_mass",
    min_share: float = 0.02,
    candidates: str = "contrast",
    min_motion: float = 0.8,
    min_angle: float = 60.0,
    noise_factor: float = 3.0,
    **_: object,
) -> Segmentation:
    """Light step 2: points moving like the relevant flow, or against the crowd and like the
    relevant residual.

    ``candidates="projection"`` (the paper): the candidate points are
    :func:`projection_candidates` around :func:`relevant_flow`.
    ``candidates="contrast"`` (beyond the paper): the points moving against the crowd
    (:func:`nims.step2.contrast.contrast_candidates` with ``min_motion``, ``min_angle`` and
    ``noise_factor``), then the paper's test on the flow once the camera's motion is removed:
    of those points, the ones whose residual projects onto their relevance²-weighted mean
    residual within ``(alpha1, alpha2)``. ``alpha1`` / ``alpha2`` None: the candidates' own
    bound, :data:`DEFAULT_BOUNDS`. Candidate points and the other pixels are split into
    connected components, all candidate regions; the largest is normally the background, and
    the selection keeps the regions more relevant than it.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    if candidates not in DEFAULT_BOUNDS:
        raise ValueError(f"step2.candidates must be 'projection' or 'contrast', got {candidates!r}")
    low, high = DEFAULT_BOUNDS[candidates]
    alpha1 = low if alpha1 is None else alpha1
    alpha2 = high if alpha2 is None else alpha2
    if not alpha1 < alpha2:
        raise ValueError(f"step2.alpha1 ({alpha1}) must be smaller than step2.alpha2 ({alpha2})")
    if projection not in ("normalised", "literal"):
        raise ValueError(f"step2.projection must be 'normalised' or 'literal', got {projection!r}")
    if candidates == "contrast":
        motion = camera_residual(flow)
        among = contrast_candidates(flow, min_motion, min_angle, noise_factor, residual=motion)
    else:
        motion, among = flow, np.ones(flow.shape[:2], dtype=bool)
    mode = relevant_flow(motion[among], relevance[among])
    if mode is not None:
        points = among & projection_candidates(motion, mode, alpha1, alpha2, projection)
    elif candidates == "contrast":
        points = among  # no relevance on them: no relevant residual to test against
    else:
        points = np.zeros(flow.shape[:2], dtype=bool)
    return split_and_select(points, relevance, min_region, connectivity, selection, min_share)
