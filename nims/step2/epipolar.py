"""Step 2, epipolar version (``step2=epipolar``, beyond the paper): candidate regions are the
pixels whose flow breaks the epipolar geometry of the frame pair.

A static scene seen by a moving camera obeys one fundamental matrix ``F``, however near the
objects (parallax moves a point *along* its epipolar line); a point that moves on its own leaves
that line. ``F`` is fitted robustly (RANSAC, then trimmed least squares) to correspondences
``x -> x + w(x)`` sampled from the flow, and a pixel is a candidate when its Sampson distance
to ``F`` exceeds ``max(min_distance, noise_factor * median distance)``: the median tracks the
flow's own error.
Candidates and the other pixels are split into connected components, then selected like the
other step 2 methods, by the relevance times the Sampson distance (``evidence``), the relevance
raised everywhere by a floor (``relevance_floor``) so that where the classifier's relevance is
silent the geometry still speaks. Blind spots: a mover sliding along its epipolar line, and
pairs without camera translation (``F`` is then undetermined: nothing is a candidate).
Maps at the flow's resolution: flow ``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from __future__ import annotations

import numpy as np

from nims.epipolar import epipolar_distance
from nims.flow import check_flow
from nims.step2.base import (
    STEP2_METHODS,
    Segmentation,
    check_relevance,
    non_negative,
    non_negative_int,
    positive,
    split_and_select,
)


def distance_outliers(distance: np.ndarray, min_distance: float, noise_factor: float) -> np.ndarray:
    """Pixels that leave their epipolar line: ``(H, W)`` bool, true where the Sampson
    ``distance`` ``(H, W)`` (pixels) exceeds ``max(min_distance, noise_factor * median
    distance)``, the median tracking the flow's own error."""
    threshold = max(float(min_distance), float(noise_factor) * float(np.median(distance)))
    return distance > threshold


def epipolar_outliers(
    flow: np.ndarray,
    min_distance: float = 0.05,
    noise_factor: float = 6.0,
    samples: int = 4000,
    seed: int = 0,
) -> np.ndarray:
    """Pixels whose flow leaves its epipolar line: ``(H, W)`` bool, :func:`distance_outliers`
    of :func:`epipolar_distance`."""
    return distance_outliers(epipolar_distance(flow, samples, seed), min_distance, noise_factor)


EVIDENCE = ("relevance", "relevance_x_distance")
"""What the selection weighs (``step2.evidence`` of this step)."""


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
    selection: str = "paper",
    min_share: float = 0.1,
    evidence: str = "relevance_x_distance",
    relevance_floor: float = 0.1,
    **_: object,
) -> Segmentation:
    """Epipolar step 2: epipolar outliers -> connected components -> salient regions.

    ``min_distance`` (pixels) and ``noise_factor`` set the outlier test of
    :func:`epipolar_outliers`; ``samples`` and ``seed`` the fit of :func:`fundamental_matrix`;
    ``min_region``, ``connectivity``, ``selection`` and ``min_share`` as in the other methods.

    ``evidence`` is the map the selection weighs: ``"relevance"``, or
    ``"relevance_x_distance"`` (beyond the paper), the positive relevance times each pixel's
    Sampson distance (pixels): the classifier says where the salient motion is, the geometry how
    far a region leaves its epipolar lines, so a few outlier pixels under a relevance blob no
    longer outscore a mover that the relevance covers thinly.

    ``relevance_floor`` (``relevance_x_distance`` only) is added to the positive relevance
    everywhere, in units of its frame mean, before the product: LRP through max-pooling leaves
    the relevance exactly zero away from the winning units, and a mover that leaves its
    epipolar lines where the relevance is zero would otherwise weigh nothing, tied with a
    background that does not leave them. 0: the product alone.
    """
    flow = check_flow(flow)
    relevance = check_relevance(relevance, flow.shape[:2])
    if evidence not in EVIDENCE:
        raise ValueError(f"step2.evidence must be one of {EVIDENCE}, got {evidence!r}")
    relevance_floor = non_negative(relevance_floor, "step2.relevance_floor")
    distance = epipolar_distance(flow, non_negative_int(samples, "step2.samples"), seed)
    outliers = distance_outliers(
        distance,
        positive(min_distance, "step2.min_distance"),
        positive(noise_factor, "step2.noise_factor"),
    )
    if evidence == "relevance_x_distance":
        positive_relevance = np.maximum(relevance, 0)
        floor = relevance_floor * float(positive_relevance.mean())
        relevance = (positive_relevance + floor) * distance
    return split_and_select(outliers, relevance, min_region, connectivity, selection, min_share)
