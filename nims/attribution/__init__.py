"""Step 1 of NIMS: which input pixels made the classifier say "salient" (``attribution=...``).

:func:`relevance_maps` batches flow fields through the classifier and the attribution the
``attribution`` config node names, and returns per-pixel maps at the flows' resolution.
Attributions are registered in :data:`ATTRIBUTIONS`: ``lrp`` (:mod:`nims.attribution.lrp`, the
paper's step 1, with the rules of :mod:`nims.attribution.rules` that ``lrp_rules`` picks) and
the gradient methods of :mod:`nims.attribution.gradients` (``gradient_x_input``,
``integrated_gradients``). An attribution takes ``(model, flow batch (B, 2, h, w), **options)``
and returns an :class:`Attribution`. ``flips`` (every attribution's option, beyond the paper)
decides with the mean logit of the flow and its mirror images (:func:`attribute`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from nims.flow import check_flow, resize_flow
from nims.model import MotionClassifier
from nims.registry import Registry

ATTRIBUTIONS: Registry = Registry("attribution")


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
    resized = [
        resize_flow(check_flow(flow, f"flow {index}"), input_size)
        for index, flow in enumerate(flows)
    ]
    return torch.from_numpy(np.stack(resized).transpose(0, 3, 1, 2).copy())


FLIPS = {
    1: ((False, False),),
    2: ((False, False), (True, False)),
    4: ((False, False), (True, False), (False, True), (True, True)),
}
"""Mirrorings of ``flips``: (horizontal, vertical) per copy."""


def mirrored(flow: torch.Tensor, horizontal: bool, vertical: bool) -> torch.Tensor:
    """A ``(B, 2, h, w)`` flow batch seen in a mirror: a horizontal flip reverses the columns
    and negates ``u``, a vertical one the rows and ``v`` (its own inverse)."""
    flow = flow.flip(3) if horizontal else flow
    flow = flow.flip(2) if vertical else flow
    signs = torch.tensor([-1.0 if horizontal else 1.0, -1.0 if vertical else 1.0])
    return flow * signs.to(flow)[None, :, None, None]


def attribute(model: MotionClassifier, flow: torch.Tensor, attribution_cfg) -> Attribution:
    """Run the attribution an ``attribution`` config node names (its keys are the options).

    ``flips`` (1, 2 or 4; 1 is the paper's) decides with the mean logit of the flow and its
    mirror images (:data:`FLIPS`, :func:`mirrored`): the classifier is trained with random
    flips, so each copy is as valid an input, and the mean is mirror-invariant where one pass
    is not. The relevance stays that of the flow as it is (the copies' relevance, mirrored
    back and averaged, did not place it better and costs a full propagation per copy:
    ``experiments/table1_davis.md``).
    """
    options = dict(attribution_cfg)
    method = ATTRIBUTIONS.get(options.pop("name"))
    flips = int(options.pop("flips", 1))
    if flips not in FLIPS:
        raise ValueError(f"attribution.flips must be 1, 2 or 4, got {flips}")
    result = method(model, flow, **options)
    if flips == 1:
        return result
    with torch.no_grad():
        copies = torch.cat([mirrored(flow, *mirror) for mirror in FLIPS[flips][1:]])
        logits = model(copies).reshape(flips - 1, len(flow)).sum(0)
    return Attribution(result.per_channel, (result.logits.detach() + logits) / flips)


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
    maps = [
        cv2.resize(
            relevance.numpy(), (flow.shape[1], flow.shape[0]), interpolation=cv2.INTER_LINEAR
        )
        for relevance, flow in zip(result.relevance, flows)
    ]
    return result, maps


def relevance(model: MotionClassifier, flow: np.ndarray, attribution_cfg=None) -> np.ndarray:
    """Relevance map of one ``(H, W, 2)`` flow field (pixels), at the flow's resolution.

    The documented entry point for later stages and users: LRP with the paper's rules unless
    ``attribution_cfg`` names another attribution. Returns ``(H, W)`` float32.
    """
    return relevance_maps(model, [flow], attribution_cfg)[1][0]


# The attribution modules register themselves.
from nims.attribution import gradients, lrp  # noqa: E402,F401
