"""Scores of a model's outputs against frame labels and masks, shared by training
(:mod:`nims.objectives`) and the rendered sets' benchmark (:mod:`nims.benchmarks.synthetic`):
frame decisions (accuracy, recall, specificity, AP, ROC-AUC) and the overlaps of thresholded
mask logits."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy (logit > 0); recall: the share of salient frames called salient, and
    specificity: the share of the others called not salient (NaN without such frames); average
    precision and ROC-AUC (NaN when a split has one class)."""
    labels = labels.astype(int)
    called = (logits > 0).astype(int)
    one_class = labels.min() == labels.max()
    return {
        "accuracy": float((called == labels).mean()),
        "recall": float(called[labels == 1].mean()) if (labels == 1).any() else float("nan"),
        "specificity": float(1 - called[labels == 0].mean())
        if (labels == 0).any()
        else float("nan"),
        "average_precision": float("nan")
        if one_class
        else float(average_precision_score(labels, logits)),
        "roc_auc": float("nan") if one_class else float(roc_auc_score(labels, logits)),
    }


def mask_overlaps(
    logits: torch.Tensor, masks: torch.Tensor, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Intersections and unions, ``(B, T)`` each, of ``logits > t`` for each of the ``T``
    thresholds against binary masks; logits and masks ``(B, h, w)``."""
    truth = (masks > 0.5).flatten(1)
    logits = logits.flatten(1)
    intersections, unions = [], []
    for threshold in thresholds:
        predicted = logits > float(threshold)
        intersections.append((predicted & truth).sum(1))
        unions.append((predicted | truth).sum(1))
    return (
        torch.stack(intersections, 1).cpu().numpy(),
        torch.stack(unions, 1).cpu().numpy(),
    )


def mean_jaccard(intersections: np.ndarray, unions: np.ndarray) -> np.ndarray:
    """Mean over frames of J per threshold, ``(T,)``, from ``(B, T)`` overlaps (J is 1 when
    both masks are empty, as in the DAVIS protocol)."""
    jaccard = np.where(unions > 0, intersections / np.maximum(unions, 1), 1.0)
    return jaccard.astype(np.float64).mean(0)
