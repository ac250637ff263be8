"""DAVIS-2016 segmentation measures, exactly as the official toolkit computes them.

Per frame:

- **J** (region similarity): ``|A & B| / |A | B|``; 1 when both masks are empty.
- **F** (contour accuracy): boundary F-measure. Boundaries come from ``seg2bmap`` (a pixel is on
  the boundary when it differs from its right, lower or lower-right neighbour); they match
  within ``ceil(0.008 * image diagonal)`` pixels (8 at 854x480) through dilation by a disk.
  Empty boundaries: prediction empty and ground truth not -> P = 1, R = 0; the reverse ->
  P = 0, R = 1; both empty -> P = R = 1.

Per sequence the first and last frames are dropped, then:

- **Mean**: mean over frames; **Recall**: fraction of frames scoring > 0.5;
- **Decay**: mean of the first quarter minus mean of the last quarter, the quarters being the
  bins ``round(linspace(1, L, 5))`` (1-based, adjacent bins share their edge frame).

Dataset figures are means over sequences, and J&F is the mean of J Mean and F Mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D mask, got shape {mask.shape}")
    return mask.astype(bool)


def _check_pair(prediction: np.ndarray, annotation: np.ndarray):
    prediction = _as_mask(prediction, "prediction")
    annotation = _as_mask(annotation, "annotation")
    if prediction.shape != annotation.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} differs from annotation shape {annotation.shape}"
        )
    return prediction, annotation


def jaccard(prediction: np.ndarray, annotation: np.ndarray) -> float:
    """Region similarity J of two ``(H, W)`` masks (nonzero = foreground)."""
    prediction, annotation = _check_pair(prediction, annotation)
    union = np.count_nonzero(prediction | annotation)
    if union == 0:
        return 1.0
    return np.count_nonzero(prediction & annotation) / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a ``(H, W)`` mask, as the DAVIS toolkit's ``seg2bmap``."""
    seg = _as_mask(mask, "mask")
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def disk(radius: int) -> np.ndarray:
    """Disk structuring element ``x^2 + y^2 <= radius^2``, shape (2r+1, 2r+1), uint8."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[None, :] ** 2 + offsets[:, None] ** 2 <= radius**2).astype(np.uint8)


def boundary_tolerance(shape) -> int:
    """Matching distance in pixels for an image of ``shape``: ``ceil(0.008 * diagonal)``."""
    return int(math.ceil(BOUNDARY_TOLERANCE * math.hypot(shape[0], shape[1])))


def f_measure(prediction: np.ndarray, annotation: np.ndarray) -> float:
    """Contour accuracy F of two ``(H, W)`` masks (nonzero = foreground)."""
    prediction, annotation = _check_pair(prediction, annotation)
    predicted_boundary = seg2bmap(prediction)
    true_boundary = seg2bmap(annotation)
    n_predicted = np.count_nonzero(predicted_boundary)
    n_true = np.count_nonzero(true_boundary)
    if n_predicted == 0 and n_true == 0:
        return 1.0
    if n_predicted == 0 or n_true == 0:
        return 0.0  # precision or recall is 0, and F = 0 whatever the other is
    element = disk(boundary_tolerance(prediction.shape))
    predicted_dilated = cv2.dilate(predicted_boundary.view(np.uint8), element).view(bool)
    true_dilated = cv2.dilate(true_boundary.view(np.uint8), element).view(bool)
    precision = np.count_nonzero(predicted_boundary & true_dilated) / n_predicted
    recall = np.count_nonzero(true_boundary & predicted_dilated) / n_true
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def decay(values: Sequence[float], bins: int = 4) -> float:
    """Mean of the first quarter minus mean of the last, with the toolkit's bin edges."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    # round(linspace(1, L, 5) + 1e-10) - 1: 0-based edges; the epsilon rounds halves up.
    edges = (np.round(np.linspace(1, values.size, bins + 1) + 1e-10) - 1).astype(np.int64)
    first = values[edges[0] : edges[1] + 1]
    last = values[edges[bins - 1] : edges[bins] + 1]
    return float(np.nanmean(first) - np.nanmean(last))


def sequence_statistics(values: Sequence[float]) -> dict[str, float]:
    """Mean, Recall (> 0.5) and Decay of one sequence's per-frame values.

    ``values`` are all frames of the sequence; the first and last are dropped here, as the
    official protocol does.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 3:
        raise ValueError(
            f"a sequence needs at least 3 frames to be scored (first and last are excluded), "
            f"got {values.size}"
        )
    scored = values[1:-1]
    return {
        "mean": float(np.nanmean(scored)),
        "recall": float(np.mean(scored > 0.5)),
        "decay": decay(scored),
    }


def evaluate_sequence(predictions: Sequence[np.ndarray], annotations: Sequence[np.ndarray]):
    """Per-frame J and F and the per-sequence statistics of one sequence.

    Returns
    -------
    frames : dict
        ``{"J": [...], "F": [...]}``, one value per frame (first and last included).
    statistics : dict
        ``{"J": {"mean", "recall", "decay"}, "F": {...}}``.
    """
    if len(predictions) != len(annotations):
        raise ValueError(f"{len(predictions)} predictions for {len(annotations)} annotations")
    frames = {
        "J": [jaccard(p, a) for p, a in zip(predictions, annotations, strict=True)],
        "F": [f_measure(p, a) for p, a in zip(predictions, annotations, strict=True)],
    }
    return frames, {measure: sequence_statistics(v) for measure, v in frames.items()}


def dataset_summary(per_sequence: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    """Mean over sequences of each statistic, plus ``J&F``.

    Parameters
    ----------
    per_sequence : dict
        ``{sequence: {"J": {"mean", "recall", "decay"}, "F": {...}}}``.

    Returns
    -------
    dict
        Keys ``J&F``, ``J_mean``, ``J_recall``, ``J_decay``, ``F_mean``, ``F_recall``,
        ``F_decay``.
    """
    if not per_sequence:
        raise ValueError("no sequence was scored")
    summary = {}
    for measure in ("J", "F"):
        for statistic in ("mean", "recall", "decay"):
            summary[f"{measure}_{statistic}"] = float(
                np.mean([stats[measure][statistic] for stats in per_sequence.values()])
            )
    summary = {"J&F": 0.5 * (summary["J_mean"] + summary["F_mean"]), **summary}
    return summary
