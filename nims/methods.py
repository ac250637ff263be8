"""Methods: what turns a sequence's flows into one :class:`~nims.pipeline.FrameResult` per frame.

``method=nims`` is the paper's pipeline (classifier, attribution, step 2, saliency map);
``method=dominant_motion`` the flow-only baseline (no classifier); ``method=unet`` the supervised
U-Net of the crowd experiment. A benchmark (:mod:`nims.benchmarks`) feeds any of them the same
:class:`~nims.benchmarks.SequenceData` (``predict(data, progress)``) and scores their results the
same way. Adding a method is one class registered here and
one ``conf/method/<name>.yaml``.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from omegaconf import DictConfig

from nims.device import resolve_device
from nims.pipeline import FrameResult, sequence_results
from nims.registry import Registry

METHODS: Registry = Registry("method")


def task_classifier(cfg: DictConfig):
    """The classifier ``checkpoint`` names, checked against ``task``, on ``device``."""
    from nims.model import load_classifier

    return load_classifier(cfg.checkpoint, expected_task=cfg.task.name).to(
        resolve_device(cfg.get("device", "cpu"))
    )


def _padded(results: List[FrameResult], shape, n_frames: int) -> List[FrameResult]:
    """``results`` followed by empty ones up to ``n_frames`` (a sequence's last frame has no
    forward flow: nothing salient there)."""
    empty = np.zeros(shape, dtype=bool)
    nothing = FrameResult(float("nan"), None, None, np.zeros(shape, dtype=np.float32), empty)
    return results + [nothing] * (n_frames - len(results))


@METHODS.register("nims")
class Nims:
    """NIMS: step 1 relevance of the task classifier, step 2 regions, saliency map."""

    title = "NIMS"
    classifies = True  # results carry the classifier's logit, relevance and step 2 regions

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.model = task_classifier(cfg)
        self.input_size = self.model.input_size

    def predict(self, data, progress: Optional[str] = None) -> List[FrameResult]:
        return sequence_results(self.model, data.flows, self.cfg, data.n_frames, progress)


class FlowOnlyMethod:
    """A baseline without a classifier: each frame's flow alone gives its mask and its map."""

    classifies = False

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def frame(self, flow: np.ndarray):
        """``(mask (H, W) bool, saliency (H, W) float32)`` of one flow field."""
        raise NotImplementedError

    def predict(self, data, progress: Optional[str] = None) -> List[FrameResult]:
        results = [
            FrameResult(float("nan"), None, None, saliency, mask)
            for mask, saliency in map(self.frame, data.flows)
        ]
        return _padded(results, data.flows[0].shape[:2], data.n_frames)


@METHODS.register("dominant_motion")
class DominantMotion(FlowOnlyMethod):
    """Pixels moving unlike the frame's dominant affine motion (no classifier); the saliency
    map is ``1 - exp(-lam * residual)``."""

    title = "Dominant-motion baseline"

    def frame(self, flow: np.ndarray):
        from nims.baselines import dominant_motion_mask, residual_magnitude

        method, lam = self.cfg.method, float(self.cfg.saliency.lam)
        mask = dominant_motion_mask(flow, method.threshold, int(method.min_region))
        return mask, 1 - np.exp(-lam * residual_magnitude(flow))


@METHODS.register("epipolar_motion")
class EpipolarMotion(FlowOnlyMethod):
    """Pixels whose flow leaves the epipolar geometry of the frame pair (no classifier; beyond
    the paper): the flow-only counterpart of ``step2=epipolar``. The saliency map is
    ``1 - exp(-lam * Sampson distance)``."""

    title = "Epipolar baseline"

    def frame(self, flow: np.ndarray):
        from nims.segmentation import connected_regions
        from nims.step2_epipolar import epipolar_distance, outlier_threshold

        method, lam = self.cfg.method, float(self.cfg.saliency.lam)
        distance = epipolar_distance(flow, int(method.samples), int(method.seed))
        threshold = outlier_threshold(distance, method.min_distance, method.noise_factor)
        regions = connected_regions((distance > threshold).astype(np.int32), method.min_region)
        return regions > 0, (1 - np.exp(-lam * distance)).astype(np.float32)


@METHODS.register("unet")
class SupervisedUNet:
    """The supervised U-Net (``train.py model=unet``): mask logits at its input resolution,
    resized to the flow's, thresholded at the model's calibrated decision logit; the saliency
    map is the sigmoid of the logits minus that logit."""

    title = "Supervised U-Net"
    classifies = False

    def __init__(self, cfg: DictConfig):
        from nims.unet import load_unet

        self.device = resolve_device(cfg.get("device", "cpu"))
        self.model = load_unet(cfg.checkpoint, expected_task=cfg.task.name).to(self.device)
        self.input_size = self.model.input_size

    def predict(self, data, progress: Optional[str] = None) -> List[FrameResult]:
        import cv2
        import torch

        from nims.attribution import to_model_input

        flows = data.flows
        with torch.no_grad():
            batch = to_model_input(list(flows), self.input_size).to(self.device)
            logits = self.model(batch).cpu().numpy()
        results = []
        decision = float(self.model.decision_logit)
        for flow, logit in zip(flows, logits):
            size = flow.shape[1::-1]
            mask = cv2.resize(
                (logit > decision).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
            ).astype(bool)
            # 0.5 at the decision logit, so the map and the mask agree.
            saliency = cv2.resize(1 / (1 + np.exp(decision - logit)), size).astype(np.float32)
            results.append(FrameResult(float("nan"), None, None, saliency, mask))
        return _padded(results, flows[0].shape[:2], data.n_frames)


def method_for(cfg: DictConfig):
    """The method ``method.name`` names, built from ``cfg``."""
    return METHODS.get(str(cfg.method.name))(cfg)
