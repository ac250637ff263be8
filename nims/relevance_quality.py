"""How well a relevance map points at the salient object, judged before step 2.

Step 2 and the selection can only keep what the relevance points at, so each change to the
classifier or the attribution is first judged here, on any set with ground truth:

- *pointing game*: is the relevance maximum inside the object;
- *share inside*: the share of the positive relevance that falls on the object, against the
  object's share of the frame (a map blind to the object puts about ``object_share`` inside);
- correlation with the flow magnitude: near 1, the attribution mostly tracks how fast things
  move (what the paper observed for integrated gradients) rather than which motion is salient.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUALITY_KEYS = ("pointing", "share_inside", "object_share")


def relevance_flow_correlation(relevance: np.ndarray, flow: np.ndarray) -> float:
    """Pearson correlation between a relevance map ``(H, W)`` and the flow magnitude of a flow
    ``(H, W, 2)``, over the pixels; NaN for a constant map."""
    magnitude = np.linalg.norm(flow, axis=2).ravel()
    values = relevance.ravel()
    if values.std() == 0 or magnitude.std() == 0:
        return float("nan")
    return float(np.corrcoef(values, magnitude)[0, 1])


def relevance_quality(relevance: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pointing game and share of positive relevance on the object, for one frame.

    Parameters
    ----------
    relevance : array, shape (H, W)
        Relevance map at the ground truth's resolution.
    truth : array, shape (H, W), bool
        The salient object's pixels.

    Returns
    -------
    dict
        ``pointing`` (1.0 when the maximum lies inside the object, else 0.0), ``share_inside``
        (positive relevance on the object / all positive relevance, in [0, 1]) and
        ``object_share`` (the object's share of the frame's pixels). Every value is NaN when
        the frame shows no object; ``pointing`` and ``share_inside`` are NaN when the relevance
        has no positive value (nothing points anywhere).
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if relevance.shape != truth.shape:
        raise ValueError(
            f"relevance shape {relevance.shape} does not match the ground truth's {truth.shape}"
        )
    nan = float("nan")
    if not truth.any():
        return {"pointing": nan, "share_inside": nan, "object_share": nan}
    positive = np.clip(relevance, 0, None)
    total = positive.sum()
    if total <= 0:
        return {"pointing": nan, "share_inside": nan, "object_share": float(truth.mean())}
    return {
        "pointing": float(truth.flat[int(np.argmax(relevance))]),
        "share_inside": float(positive[truth].sum() / total),
        "object_share": float(truth.mean()),
    }


def mean_quality(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    """Mean of each :data:`QUALITY_KEYS` value over frames, NaN values left out (NaN when
    no frame has one)."""
    rows = list(rows)
    summary = {}
    for key in QUALITY_KEYS:
        values = [row[key] for row in rows if key in row and np.isfinite(row[key])]
        summary[f"relevance_{key}"] = float(np.mean(values)) if values else float("nan")
    return summary
