"""What every method shares: the registry :data:`METHODS`, the :class:`FrameResult` it returns
per frame, :class:`FlowOnlyMethod` for the methods without a classifier, and
:func:`method_for`. The methods register themselves on import of :mod:`nims.methods`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from nims.registry import Registry
from nims.step2 import Segmentation

METHODS: Registry = Registry("method")


@dataclass
class FrameResult:
    """A method's output for one frame (all maps at the flow's resolution).

    Attributes
    ----------
    logit : float
        The classifier's decision logit (> 0: the frame holds salient motion; the mean over
        ``decision.flips`` mirror images and ``decision.window`` frames); NaN for a method
        without a classifier.
    relevance : array (H, W) float32, or None
        Step 1, channel-summed relevance (None without a classifier).
    segmentation : Segmentation, or None
        Step 2: candidate regions and R_sal (None for a method without step 2).
    saliency : array (H, W) float32 in [0, 1), or None
        None for saved masks, which come without a map.
    mask : array (H, W) bool
        The binary segmentation (NIMS: R_sal where ``saliency > mask_threshold``).
    """

    logit: float
    relevance: np.ndarray | None
    segmentation: Segmentation | None
    saliency: np.ndarray | None
    mask: np.ndarray


def padded(results: list[FrameResult], shape, n_frames: int) -> list[FrameResult]:
    """``results`` followed by empty ones up to ``n_frames`` (a sequence's last frame has no
    forward flow: nothing salient there)."""
    empty = np.zeros(shape, dtype=bool)
    nothing = FrameResult(float("nan"), None, None, np.zeros(shape, dtype=np.float32), empty)
    return results + [nothing] * (n_frames - len(results))


class FlowOnlyMethod:
    """A baseline without a classifier: each frame's flow alone gives its mask and its map."""

    classifies = False

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def frame(self, flow: np.ndarray):
        """``(mask (H, W) bool, saliency (H, W) float32)`` of one flow field."""
        raise NotImplementedError

    def predict(self, data, progress: str | None = None) -> list[FrameResult]:
        results = [
            FrameResult(float("nan"), None, None, saliency, mask)
            for mask, saliency in map(self.frame, data.flows)
        ]
        return padded(results, data.flows[0].shape[:2], data.n_frames)


def method_for(cfg: DictConfig):
    """The method ``method.name`` names, built from ``cfg``."""
    return METHODS.get(str(cfg.method.name))(cfg)
