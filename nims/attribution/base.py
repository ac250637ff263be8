"""What every attribution shares: the registry :data:`ATTRIBUTIONS`, the :class:`Attribution` it
returns, and the batching around it (the model's input, the mirrored copies of the decision,
the maps at the flow's resolution). The attributions register themselves on import of
:mod:`nims.attribution`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from nims.flow import check_flow, resize_flow
from nims.model import MotionClassifier, sides_times
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


def attribute(
    model: MotionClassifier, flow: torch.Tensor, attribution_cfg, flips: int = 1
) -> Attribution:
    """Run the attribution an ``attribution`` config node names (its keys are the options).

    ``flips`` (``decision.flips``: 1 or 4; 1 is the paper's) decides with the mean logit of
    the flow and its mirror images (:data:`FLIPS`, :func:`mirrored`): the classifier is trained
    with random flips, so each copy is as valid an input, and the mean is mirror-invariant where
    one pass is not. The relevance stays that of the flow as it is (the copies' relevance,
    mirrored back and averaged, did not place it better and costs a full propagation per copy:
    ``experiments/table1_davis.md``).
    """
    options = dict(attribution_cfg)
    method = ATTRIBUTIONS.get(options.pop("name"))
    if flips not in FLIPS:
        raise ValueError(
            f"decision.flips must be 1 (one pass) or 4 (the mirror images), got {flips}"
        )
    result = method(model, flow, **options)
    if flips == 1:
        return result
    with torch.no_grad():
        copies = torch.cat([mirrored(flow, *mirror) for mirror in FLIPS[flips][1:]])
        logits = model(copies).reshape(flips - 1, len(flow)).sum(0)
    return Attribution(result.per_channel, (result.logits.detach() + logits) / flips)


def decision_logits(logits: np.ndarray, window: int) -> np.ndarray:
    """Each frame's decision logit: the mean logit of the ``window`` consecutive frames centred
    on it (fewer at a sequence's ends); ``decision.window``, beyond the paper (1: each frame
    alone, the paper).

    Salient motion lasts longer than a frame pair, and the classifier's errors on neighbouring
    frames are partly independent: on the crowd set's validation videos a 3-frame window raises
    the frame accuracy from 0.881 to 0.911 (``experiments/crowd.md``). A salient event shorter
    than half the window can be outvoted by its neighbours.

    Parameters
    ----------
    logits : array (N,)
        Per-frame logits of one sequence, in frame order.
    window : int
        Odd, at least 1.

    Returns
    -------
    array (N,) float64
    """
    window = int(window)
    if window < 1 or window % 2 == 0:
        raise ValueError(f"decision.window must be an odd number of frames >= 1, got {window}")
    logits = np.asarray(logits, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(logits)])
    index = np.arange(len(logits))
    low = np.maximum(index - window // 2, 0)
    high = np.minimum(index + window // 2 + 1, len(logits))
    return (sums[high] - sums[low]) / (high - low)


def scaled_input_size(model: MotionClassifier, scale: float) -> tuple[int, int]:
    """The classifier's input size times ``scale``, each side rounded to a multiple of 8 (at
    least 8); another size than its own needs a fully convolutional classifier."""
    if scale == 1:
        return model.input_size
    if scale <= 0:
        raise ValueError(f"decision.scales must be positive, got {scale}")
    if not model.fully_convolutional:
        raise ValueError(
            f"decision.scales reads the flow at {scale} times the classifier's input size, but "
            f"its head ({model.head!r}) reads a map of one size: use decision=default (one "
            "reading at its input size)"
        )
    return sides_times(model.input_size, scale)


def attribute_flows(
    model: MotionClassifier,
    flows: Sequence[np.ndarray],
    attribution_cfg=None,
    flips: int = 1,
    scale: float = 1.0,
) -> Attribution:
    """:func:`attribute` on ``(H, W, 2)`` flow fields (pixels), at the classifier's resolution
    (times ``scale``: :func:`scaled_input_size`); the result on the CPU whatever the model's
    device."""
    attribution_cfg = attribution_cfg or {"name": "lrp"}
    # The batch goes where the model is (CPU, or the GPU of device=cuda); results come back.
    # Channels-last: the convolutions take the few-channel maps in about half the time on the
    # CPU (make bench), with the same results to float rounding.
    batch = to_model_input(flows, scaled_input_size(model, float(scale))).to(
        model.fc.weight.device, memory_format=torch.channels_last
    )
    on_device = attribute(model, batch, attribution_cfg, flips)
    return Attribution(on_device.per_channel.cpu(), on_device.logits.cpu())


def at_flow_resolution(relevance: torch.Tensor, shape: Sequence[int]) -> np.ndarray:
    """A ``(h, w)`` relevance map at the classifier's resolution resized (bilinear) to a flow's
    ``(H, W)``: per-pixel values, as step 2 uses them (means and weights), not sums over
    pixels. Returns float32."""
    return cv2.resize(
        relevance.numpy(), (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR
    )


def relevance_maps(
    model: MotionClassifier, flows: Sequence[np.ndarray], attribution_cfg=None, flips: int = 1
):
    """Relevance of ``(H, W, 2)`` flow fields, at the classifier's and at the flows' resolution.

    Returns
    -------
    attribution : Attribution
        At the classifier's resolution (per channel and logits).
    maps : list of arrays (H, W), float32
        Channel-summed relevance at each flow's resolution (:func:`at_flow_resolution`).
    """
    result = attribute_flows(model, flows, attribution_cfg, flips)
    maps = [
        at_flow_resolution(map_, flow.shape)
        for map_, flow in zip(result.relevance, flows, strict=True)
    ]
    return result, maps


def relevance(model: MotionClassifier, flow: np.ndarray, attribution_cfg=None) -> np.ndarray:
    """Relevance map of one ``(H, W, 2)`` flow field (pixels), at the flow's resolution.

    The documented entry point for later stages and users: LRP with the paper's rules unless
    ``attribution_cfg`` names another attribution. Returns ``(H, W)`` float32.
    """
    return relevance_maps(model, [flow], attribution_cfg)[1][0]
