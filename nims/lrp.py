"""Step 1 of NIMS: relevance of every input pixel for the "salient" logit.

Layer-wise relevance propagation (Bach et al. 2015, Montavon et al. 2017) on the classifier's
interpretation network (:func:`nims.model.fold`), starting from the logit:

- fully-connected layer and every convolution but the first: **z+** rule,
  ``R_i = sum_j x_i w+_ij / (sum_i' x_i' w+_i'j) R_j``;
- first convolution (signed flow input): **z^beta** rule with the admissible input bounds
  ``l <= x <= h``, ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / z_j R_j``;
- max-pool: winner takes all; ReLU: relevance passes unchanged.

Biases are left out of every rule, so relevance is conserved layer to layer: the input
relevance sums to the starting value. The paper starts from the logit (``start="logit"``).
LRP is linear in that value, so a frame with a negative logit gets the mirror image of its
evidence for "salient" and step 2 then picks the least relevant regions; ``start="unit"``
(our default, beyond the paper) starts from 1: the evidence for "salient" whatever the
decision, the logit's map divided by the logit. Bounds are, per channel, the sample's own
minimum and maximum (``bounds="sample"``) or fixed values (``bounds="fixed"``, e.g. dataset
statistics).

Other attributions, picked with ``attribution=``: ``gradient_x_input`` and
``integrated_gradients`` (zero-flow baseline or the dominant affine motion as baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from nims.flow import check_flow, resize_flow
from nims.model import (InterpretationNetwork, MotionClassifier, check_model_input, fold,
                        head_features)
from nims.registry import Registry

ATTRIBUTIONS: Registry = Registry("attribution")
STABILISER = 1e-9  # keeps 0/0 defined; far below any activation of a trained network


@dataclass
class Attribution:
    """Relevance of a batch.

    Attributes
    ----------
    per_channel : tensor (B, 2, h, w)
        Relevance of the u and v inputs at the classifier's resolution.
    logits : tensor (B,)
        The "salient" logits the relevance starts from.
    """

    per_channel: torch.Tensor
    logits: torch.Tensor

    @property
    def relevance(self) -> torch.Tensor:
        """Relevance summed over the flow channels, ``(B, h, w)``."""
        return self.per_channel.sum(dim=1)


def to_model_input(flows: Sequence[np.ndarray], input_size: Sequence[int]) -> torch.Tensor:
    """Stack ``(H, W, 2)`` flow fields (pixels) into a ``(B, 2, h, w)`` batch at the classifier's
    resolution, vectors rescaled to its pixels."""
    if isinstance(flows, np.ndarray) and flows.ndim == 3:
        flows = [flows]
    resized = [resize_flow(check_flow(flow, f"flow {index}"), input_size)
               for index, flow in enumerate(flows)]
    return torch.from_numpy(np.stack(resized).transpose(0, 3, 1, 2).copy())


def _stabilise(z: torch.Tensor) -> torch.Tensor:
    return z + STABILISER * torch.where(z >= 0, 1.0, -1.0)


def zplus_linear(x: torch.Tensor, weight: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """z+ rule through a one-output linear layer: ``x (B, D) >= 0``, ``weight (D,)``,
    ``relevance (B,)`` -> ``(B, D)``."""
    positive = weight.clamp(min=0)
    z = x @ positive
    return x * positive[None] * (relevance / _stabilise(z))[:, None]


def zplus_conv(block, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """z+ rule through a (folded) convolution: relevance at its output -> at its input ``x``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = block.conv(x, block.weight.clamp(min=0))
        (contribution,) = torch.autograd.grad(z, x, grad_outputs=relevance / _stabilise(z))
    return (x * contribution).detach()


def zbeta_conv(block, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
               relevance: torch.Tensor) -> torch.Tensor:
    """z^beta rule through the first convolution, bounds ``low <= x <= high`` broadcastable to
    ``x``."""
    x = x.detach().requires_grad_(True)
    low = low.expand_as(x).detach().clone().requires_grad_(True)
    high = high.expand_as(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        z = (block.conv(x) - block.conv(low, block.weight.clamp(min=0))
             - block.conv(high, block.weight.clamp(max=0)))
        gradients = torch.autograd.grad(z, (x, low, high), grad_outputs=relevance / _stabilise(z))
    return sum(value * gradient for value, gradient in zip((x, low, high), gradients)).detach()


def maxpool_winner_takes_all(pre_pool: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Give each pooled relevance to the position that won the 2x2 max-pool."""
    _, indices = F.max_pool2d(pre_pool, 2, return_indices=True)
    # Windows do not overlap, so each position receives at most one pooled value.
    spread = torch.zeros_like(pre_pool).flatten(2)
    spread.scatter_(2, indices.flatten(2), relevance.flatten(2))
    return spread.reshape(pre_pool.shape)


def global_max_winner_takes_all(features: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Give each channel's relevance ``(B, C)`` to the position of its maximum in ``features``."""
    spread = torch.zeros_like(features).flatten(2)
    winners = features.flatten(2).argmax(dim=2, keepdim=True)
    spread.scatter_(2, winners, relevance[..., None])
    return spread.reshape(features.shape)


def input_bounds(flow: torch.Tensor, bounds: str = "sample", low: Optional[Sequence[float]] = None,
                 high: Optional[Sequence[float]] = None,
                 model: Optional[MotionClassifier] = None):
    """Per-channel admissible bounds of the input, each ``(B or 1, 2, 1, 1)``.

    ``bounds``: ``sample`` (each flow's own min and max), ``dataset`` (the training set's, kept in
    the checkpoint) or ``fixed`` (``low`` and ``high``, pixels at the model's resolution).
    """
    if bounds == "sample":
        return (flow.amin(dim=(2, 3), keepdim=True), flow.amax(dim=(2, 3), keepdim=True))
    if bounds == "dataset":
        if model is None or not torch.isfinite(model.input_low).all():
            raise ValueError("lrp_rules.bounds=dataset needs a classifier trained by this repo "
                             "(its checkpoint keeps the training flows' bounds); use "
                             "bounds=sample or bounds=fixed")
        low, high = model.input_low.tolist(), model.input_high.tolist()
    elif bounds != "fixed":
        raise ValueError(f"lrp_rules.bounds must be 'sample', 'dataset' or 'fixed', got {bounds!r}")
    if low is None or high is None or len(low) != 2 or len(high) != 2:
        raise ValueError("lrp_rules.bounds=fixed needs lrp_rules.low and lrp_rules.high, two "
                         "values each (u, v channels, pixels at the model's resolution)")
    low_tensor = torch.tensor(list(low), dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    high_tensor = torch.tensor(list(high), dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    if (low_tensor >= high_tensor).any():
        raise ValueError(f"lrp_rules.low {list(low)} must be below lrp_rules.high {list(high)}")
    return low_tensor, high_tensor


START_VALUES = ("logit", "unit")


def propagate(network: InterpretationNetwork, flow: torch.Tensor, low: torch.Tensor,
              high: torch.Tensor, start: str = "logit") -> Attribution:
    """LRP through an interpretation network: z+ everywhere, z^beta on the first convolution.

    ``start``: the relevance of the output, ``logit`` (the paper) or ``unit`` (1 per sample).
    """
    if start not in START_VALUES:
        raise ValueError(f"lrp_rules.start must be one of {START_VALUES}, got {start!r}")
    logits, activations, pre_pools = network.forward(flow, keep=True)
    features = activations[-1]
    read = head_features(features, network.head)
    relevance = zplus_linear(read, network.fc_weight[0],
                             logits if start == "logit" else torch.ones_like(logits))
    if network.head == "fc":
        relevance = relevance.reshape(features.shape)
    else:  # a global max-pool: each channel's relevance goes to its maximum's position
        relevance = global_max_winner_takes_all(features, relevance)
    for index in reversed(range(len(network.blocks))):
        block = network.blocks[index]
        x = activations[index]
        relevance = maxpool_winner_takes_all(pre_pools[index], relevance)
        if index == 0:
            relevance = zbeta_conv(block, x, low, high, relevance)
        else:
            relevance = zplus_conv(block, x, relevance)
    return Attribution(relevance, logits)


@ATTRIBUTIONS.register("lrp")
@torch.no_grad()
def lrp(model: MotionClassifier, flow: torch.Tensor, rules=None, **_: object) -> Attribution:
    """LRP relevance of a flow batch ``(B, 2, h, w)`` for the "salient" logit.

    ``rules`` is the ``lrp_rules`` config node: ``first_layer`` (``zbeta``), ``other_layers``
    (``zplus``), ``bounds`` (``sample`` | ``dataset`` | ``fixed``) with ``low`` / ``high``, and
    ``start`` (``logit`` | ``unit``, see :func:`propagate`).
    """
    rules = dict(rules or {})
    if rules.get("first_layer", "zbeta") != "zbeta" or rules.get("other_layers",
                                                                   "zplus") != "zplus":
        raise ValueError("lrp_rules: supported rules are first_layer=zbeta (signed flow input) "
                         f"and other_layers=zplus, got {rules}")
    check_model_input(flow, model.input_size)
    model.eval()
    lower, upper = input_bounds(flow, rules.get("bounds", "sample"), rules.get("low"),
                                rules.get("high"), model)
    return propagate(fold(model, flow), flow, lower, upper, rules.get("start", "logit"))


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
def integrated_gradients(model: MotionClassifier, flow: torch.Tensor, baseline: str = "zero",
                         steps: int = 32, **_: object) -> Attribution:
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
        raise ValueError(f"integrated gradients baseline must be 'zero' or 'dominant_motion', "
                         f"got {baseline!r}")
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


def attribute(model: MotionClassifier, flow: torch.Tensor, attribution_cfg) -> Attribution:
    """Run the attribution an ``attribution`` config node names (its keys are the options)."""
    options = dict(attribution_cfg)
    return ATTRIBUTIONS.get(options.pop("name"))(model, flow, **options)


def relevance_maps(model: MotionClassifier, flows: Sequence[np.ndarray], attribution_cfg=None):
    """Relevance of ``(H, W, 2)`` flow fields, at the classifier's and at the flows' resolution.

    Returns
    -------
    attribution : Attribution
        At the classifier's resolution (per channel and logits).
    maps : list of arrays (H, W), float32
        Channel-summed relevance resized (bilinear) to each flow's resolution: per-pixel values,
        as step 2 uses them (means and weights), not sums over pixels.
    """
    import cv2

    attribution_cfg = attribution_cfg or {"name": "lrp"}
    # The batch goes where the model is (CPU, or the GPU of device=cuda); results come back.
    batch = to_model_input(flows, model.input_size).to(model.fc.weight.device)
    on_device = attribute(model, batch, attribution_cfg)
    result = Attribution(on_device.per_channel.cpu(), on_device.logits.cpu())
    maps = [cv2.resize(relevance.numpy(), (flow.shape[1], flow.shape[0]),
                       interpolation=cv2.INTER_LINEAR)
            for relevance, flow in zip(result.relevance, flows)]
    return result, maps


def relevance(model: MotionClassifier, flow: np.ndarray, attribution_cfg=None) -> np.ndarray:
    """Relevance map of one ``(H, W, 2)`` flow field (pixels), at the flow's resolution.

    The documented entry point for later stages and users: LRP with the paper's rules unless
    ``attribution_cfg`` names another attribution. Returns ``(H, W)`` float32.
    """
    return relevance_maps(model, [flow], attribution_cfg)[1][0]
