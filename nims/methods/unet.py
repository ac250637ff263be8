"""``method=unet``: the supervised U-Net of the crowd experiment (``train.py model=unet``)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from omegaconf import DictConfig

from nims.attribution import to_model_input
from nims.device import resolve_device
from nims.methods.base import METHODS, FrameResult, padded
from nims.unet import load_unet


@METHODS.register("unet")
class SupervisedUNet:
    """The supervised U-Net (``train.py model=unet``): mask logits at its input resolution,
    resized to the flow's, thresholded at the model's calibrated decision logit; the saliency
    map is the sigmoid of the logits minus that logit."""

    title = "Supervised U-Net"
    classifies = False

    def __init__(self, cfg: DictConfig):
        self.device = resolve_device(cfg.get("device", "cpu"))
        self.model = load_unet(cfg.checkpoint, expected_task=cfg.task.name).to(self.device)
        self.input_size = self.model.input_size

    def predict(self, data, progress: str | None = None) -> list[FrameResult]:
        flows = data.flows
        with torch.no_grad():
            batch = to_model_input(list(flows), self.input_size).to(self.device)
            logits = self.model(batch).cpu().numpy()
        results = []
        decision = float(self.model.decision_logit)
        for flow, logit in zip(flows, logits, strict=True):
            size = flow.shape[1::-1]
            mask = cv2.resize(
                (logit > decision).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
            ).astype(bool)
            # 0.5 at the decision logit, so the map and the mask agree.
            saliency = cv2.resize(1 / (1 + np.exp(decision - logit)), size).astype(np.float32)
            results.append(FrameResult(float("nan"), None, None, saliency, mask))
        return padded(results, flows[0].shape[:2], data.n_frames)
