"""What every step 2 method shares: the :class:`Segmentation` it returns, the registry
:data:`STEP2_METHODS`, the selection of salient regions, connected regions, the checks of its
inputs and settings, and :func:`segment`, which runs the method a ``step2`` config node names.
The methods themselves live in the sibling modules and register on import of :mod:`nims.step2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from nims.motion import AffineMotion
from nims.registry import Registry, check_setting_types, keyword_settings

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
    step : str
        The step 2 method that made the candidate regions (set by :func:`segment`): the
        configured one, or ``step2.parallax_step``'s for a frame the hierarchical step handed
        over.
    """

    candidate_regions: np.ndarray
    region_scores: np.ndarray
    salient_labels: np.ndarray
    salient_mask: np.ndarray
    layers: np.ndarray | None = None
    layer_motions: list[AffineMotion] = field(default_factory=list)
    step: str = ""


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


def positive(value: float, key: str) -> float:
    if not value > 0:
        raise ValueError(f"{key} must be > 0, got {value}")
    return float(value)


def non_negative(value: float, key: str) -> float:
    if not value >= 0:
        raise ValueError(f"{key} must be >= 0, got {value}")
    return float(value)


def non_negative_int(value: int, key: str) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"{key} must be a non-negative integer, got {value}")
    return int(value)


SELECTION_RULES = ("paper", "relevance_mass")


def select_salient_regions(
    candidate_regions: np.ndarray,
    relevance: np.ndarray,
    rule: str = "relevance_mass",
    min_share: float = 0.1,
):
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
    labels = candidate_regions.ravel().astype(np.intp)  # bincount's index type, cast once
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
        positive = np.maximum(relevance, 0)
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
        member = labels == layer
        # Components within the label's bounding box only: most labels cover a small part of
        # the frame, and the box holds all their components.
        rows = np.flatnonzero(member.any(axis=1))
        cols = np.flatnonzero(member.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        count, components = cv2.connectedComponents(
            member[box].view(np.uint8), connectivity=connectivity, ltype=cv2.CV_32S
        )
        np.add(components, offset, out=regions[box], where=components > 0)
        offset += count - 1
    sizes = np.bincount(regions.ravel(), minlength=offset + 1)
    kept = sizes >= max(min_region, 1)
    kept[0] = False
    relabel = (np.cumsum(kept) * kept).astype(np.int32)
    return relabel[regions]


def split_and_select(
    candidates: np.ndarray,
    relevance: np.ndarray,
    min_region: int,
    connectivity: int,
    selection: str,
    min_share: float,
) -> Segmentation:
    """Candidate regions from a binary map of candidate points, then the selection: the
    candidate points and the other pixels are both split into connected components (label 1 =
    other pixels, 2 = candidates, components taken per label), all candidate regions; the
    largest is normally the background. ``candidates`` ``(H, W)`` bool."""
    candidate_regions = connected_regions(
        candidates.astype(np.int32) + 1,
        non_negative_int(min_region, "step2.min_region"),
        connectivity,
    )
    scores, salient_labels, salient_mask = select_salient_regions(
        candidate_regions, relevance, selection, min_share
    )
    return Segmentation(candidate_regions, scores, salient_labels, salient_mask)


def oracle_mask(segmentation: Segmentation, truth: np.ndarray) -> np.ndarray:
    """The best selection step 2's candidate regions allow: the regions mostly inside the
    ground truth (more than half of their pixels). Tells a segmentation loss (the regions
    cannot make the object) from a selection loss (the relevance chose the wrong regions)."""
    regions = segmentation.candidate_regions
    count = int(regions.max(initial=0)) + 1
    sizes = np.bincount(regions.ravel(), minlength=count)
    inside = np.bincount(regions.ravel(), weights=truth.ravel().astype(float), minlength=count)
    keep = inside > 0.5 * np.maximum(sizes, 1)
    keep[0] = False
    return keep[regions]


# Settings a method takes but leaves unread under some value of another setting:
# ``{method: {setting: {value: keys not read under it}}}`` (the light step's candidate tests, the
# epipolar step's floor under the relevance alone).
UNREAD_SETTINGS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "light": {
        "candidates": {
            "contrast": (),
            "projection": ("min_motion", "min_angle", "noise_factor"),
        }
    },
    "epipolar": {"evidence": {"relevance_x_distance": (), "relevance": ("relevance_floor",)}},
}


def check_step2_overrides(step2_cfg, keys: Sequence[str]) -> None:
    """Refuse step 2 settings given on the command line (``keys``, without ``step2.``) that
    the configured method does not read: a sweep over them would run identical jobs.

    Raises
    ------
    ValueError
        Naming the key, the configured method and what would read it.
    """
    options = dict(step2_cfg)
    name = str(options["name"])
    # key -> why the configured method leaves it unread, and the values that would read it
    unread = {}
    for setting, by_value in UNREAD_SETTINGS.get(name, {}).items():
        current = str(options.get(setting))
        for key in by_value.get(current, ()):
            readers = [f"step2.{setting}={v}" for v, keys in by_value.items() if key not in keys]
            unread[key] = (f" with step2.{setting}={current}", readers)
    for key in keys:
        root = key.split(".")[0]
        if root == "name" or (root in _settings(name) and root not in unread):
            continue
        where, readers = unread.get(
            root, ("", [f"step2={m}" for m in STEP2_METHODS.names() if root in _settings(m)])
        )
        if not readers:
            raise ValueError(
                f"step2={name} has no setting step2.{key}; its settings are "
                f"{', '.join(_settings(name))}"
            )
        raise ValueError(
            f"step2.{key} is not read by the configured step2={name}{where}: "
            f"{' or '.join(readers)} reads it; choose that, or leave "
            "the key out (a sweep over it would give identical jobs)"
        )


def segment(flow: np.ndarray, relevance: np.ndarray, step2_cfg) -> Segmentation:
    """Run the step 2 method a ``step2`` config node names on one frame.

    A key the method does not take (a misspelt ``+step2.betta=1``, or ``beta`` given to the
    light step) is an error naming it, never silently ignored.
    """
    options = dict(step2_cfg)
    name = options.pop("name")
    method = STEP2_METHODS.get(name)
    unknown = sorted(set(options) - set(_settings(name)))
    if unknown:
        raise ValueError(
            f"step2={name} has no setting {', '.join('step2.' + k for k in unknown)}"
            f"; its settings are {', '.join(_settings(name))}"
        )
    check_setting_types(method, options, "step2")
    result = method(flow, relevance, **options)
    result.step = result.step or name  # a method that handed the frame over has named its step
    return result


@cache
def _settings(name: str) -> tuple[str, ...]:
    """The config keys the step 2 method ``name`` takes (its keyword parameters)."""
    return keyword_settings(STEP2_METHODS.get(name), ("flow", "relevance", "_"))
