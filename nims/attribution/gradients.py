"""Gradient attributions (``attribution=gradient_x_input|integrated_gradients``), the
alternatives to LRP that the paper tried."""

from __future__ import annotations

import torch

from nims.attribution.base import ATTRIBUTIONS, Attribution
from nims.model import MotionClassifier


@ATTRIBUTIONS.register("gradient_x_input")
def gradient_x_input(model: MotionClassifier, flow: torch.Tensor, **_: object) -> Attribution:
    """Gradient of the logit times the input."""
    model.check_input(flow)
    model.eval()
    flow = flow.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(flow)
        (gradient,) = torch.autograd.grad(logits.sum(), flow)
    return Attribution((gradient * flow).detach(), logits.detach())


@ATTRIBUTIONS.register("integrated_gradients")
def integrated_gradients(
    model: MotionClassifier,
    flow: torch.Tensor,
    steps: int = 32,
    **_: object,
) -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017) from the zero-motion baseline, midpoint
    rule with ``steps`` points."""
    model.check_input(flow)
    reference = torch.zeros_like(flow)
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
