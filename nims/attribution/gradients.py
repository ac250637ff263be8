"""Gradient attributions (``attribution=gradient_x_input|integrated_gradients``), the
alternatives to LRP that the paper tried."""

from __future__ import annotations

import numpy as np
import torch

from nims.attribution.base import ATTRIBUTIONS, Attribution
from nims.model import MotionClassifier, check_model_input


@ATTRIBUTIONS.register("gradient_x_input")
def gradient_x_input(model: MotionClassifier, flow: torch.Tensor, **_: object) -> Attribution:
    """Gradient of the logit times the input."""
    check_model_input(flow, model.input_size)
    model.eval()
    flow = flow.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(flow)
        (gradient,) = torch.autograd.grad(logits.sum(), flow)
    return Attribution((gradient * flow).detach(), logits.detach())


def dominant_motion_baseline(flow: torch.Tensor) -> torch.Tensor:
    """Per sample, the robust affine fit of the flow on the whole frame, ``(B, 2, h, w)``."""
    from nims.motion import fit_affine

    fields = []
    for sample in flow.detach().cpu().numpy():
        field = np.ascontiguousarray(sample.transpose(1, 2, 0))
        fields.append(fit_affine(field).flow(field.shape[:2]).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(fields)).to(flow.dtype)


@ATTRIBUTIONS.register("integrated_gradients")
def integrated_gradients(
    model: MotionClassifier,
    flow: torch.Tensor,
    baseline: str = "zero",
    steps: int = 32,
    **_: object,
) -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017), midpoint rule with ``steps`` points.

    ``baseline="zero"``: no motion; ``"dominant_motion"``: the frame's robust affine motion, so
    that only what departs from the camera-like motion is attributed.
    """
    check_model_input(flow, model.input_size)
    if baseline == "zero":
        reference = torch.zeros_like(flow)
    elif baseline == "dominant_motion":
        reference = dominant_motion_baseline(flow)
    else:
        raise ValueError(
            f"integrated gradients baseline must be 'zero' or 'dominant_motion', got {baseline!r}"
        )
    if steps < 1:
        raise ValueError(f"integrated gradients steps must be >= 1, got {steps}")
    model.eval()
    total = torch.zeros_like(flow)
    with torch.enable_grad():
        for step in range(steps):
            alpha = (step + 0.5) / steps
            point = (reference + alpha * (flow - reference)).detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(model(point).sum(), point)
            total += gradient
    with torch.no_grad():
        logits = model(flow)
    return Attribution((flow - reference) * total / steps, logits)
