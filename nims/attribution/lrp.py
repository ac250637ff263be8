"""Step 1 of NIMS: relevance of every input pixel for the "salient" logit.

Layer-wise relevance propagation (Bach et al. 2015, Montavon et al. 2017) on the classifier's
interpretation network (:func:`nims.folding.fold`), starting from the logit:

- fully-connected layer and every convolution but the first: ``lrp_rules.other_layers``
  (the paper: **z+**);
- first convolution (signed flow input): ``lrp_rules.first_layer`` (the paper: **z^beta**, with
  the admissible input bounds ``l <= x <= h``); the rules are in :mod:`nims.attribution.rules`;
- max-pool: winner takes all (the ``max`` head's global maximum too); the ``mean`` head shares
  each channel's relevance in proportion to its activations; ReLU: relevance passes unchanged.

Biases are left out of every rule, so relevance is conserved layer to layer: the input
relevance sums to the starting value. The paper starts from the logit (``start="logit"``).
LRP is linear in that value, so a frame with a negative logit gets the mirror image of its
evidence for "salient" and step 2 then picks the least relevant regions; ``start="unit"``
(our default, beyond the paper) starts from 1: the evidence for "salient" whatever the
decision, the logit's map divided by the logit. Bounds are, per channel, the sample's own
minimum and maximum (``bounds="sample"``) or fixed values (``bounds="fixed"``, e.g. dataset
statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from nims.attribution.base import ATTRIBUTIONS, Attribution
from nims.attribution.rules import rule
from nims.folding import InterpretationNetwork, fold
from nims.model import MotionClassifier, head_features


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


def global_mean_share(features: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Share each channel's relevance ``(B, C)`` over its positions in proportion to their
    (non-negative) activations in ``features`` ``(B, C, h, w)``: the z rule of the mean, whose
    inputs are the summands; a channel with no activation passes nothing."""
    total = features.sum(dim=(2, 3), keepdim=True)
    share = torch.where(total > 0, features / total.clamp_min(1e-12), torch.zeros_like(features))
    return share * relevance[..., None, None]


def input_bounds(
    flow: torch.Tensor,
    bounds: str = "sample",
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    model: MotionClassifier | None = None,
):
    """Per-channel admissible bounds of the input, each ``(B or 1, 2, 1, 1)``.

    ``bounds``: ``sample`` (each flow's own min and max), ``dataset`` (the training set's, kept in
    the checkpoint) or ``fixed`` (``low`` and ``high``, pixels at the model's resolution).
    """
    if bounds == "sample":
        return (flow.amin(dim=(2, 3), keepdim=True), flow.amax(dim=(2, 3), keepdim=True))
    if bounds == "dataset":
        if model is None or not torch.isfinite(model.input_low).all():
            raise ValueError(
                "lrp_rules.bounds=dataset needs a classifier trained by this repo "
                "(its checkpoint keeps the training flows' bounds); use "
                "bounds=sample or bounds=fixed"
            )
        low, high = model.input_low.tolist(), model.input_high.tolist()
    elif bounds != "fixed":
        raise ValueError(f"lrp_rules.bounds must be 'sample', 'dataset' or 'fixed', got {bounds!r}")
    if low is None or high is None or len(low) != 2 or len(high) != 2:
        raise ValueError(
            "lrp_rules.bounds=fixed needs lrp_rules.low and lrp_rules.high, two "
            "values each (u, v channels, pixels at the model's resolution)"
        )
    low_tensor = torch.tensor(list(low), dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    high_tensor = torch.tensor(list(high), dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    if (low_tensor >= high_tensor).any():
        raise ValueError(f"lrp_rules.low {list(low)} must be below lrp_rules.high {list(high)}")
    return low_tensor, high_tensor


START_VALUES = ("logit", "unit")


def propagate(
    network: InterpretationNetwork,
    flow: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    start: str = "logit",
    first_layer: str = "zbeta",
    other_layers: str = "zplus",
) -> Attribution:
    """LRP through an interpretation network: ``other_layers`` on the linear layer and every
    convolution but the first, ``first_layer`` on the first (rule names of
    :data:`nims.attribution.rules.RULES`).

    ``start``: the relevance of the output, ``logit`` (the paper) or ``unit`` (1 per sample).
    """
    if start not in START_VALUES:
        raise ValueError(f"lrp_rules.start must be one of {START_VALUES}, got {start!r}")
    first, other = rule(first_layer), rule(other_layers)
    logits, activations, pre_pools = network.forward(flow, keep=True)
    features = activations[-1]
    read = head_features(features, network.head)
    relevance = other.linear(
        read, network.fc_weight[0], logits if start == "logit" else torch.ones_like(logits)
    )
    if network.head == "fc":
        relevance = relevance.reshape(features.shape)
    elif network.head == "max":  # each channel's relevance goes to its maximum's position
        relevance = global_max_winner_takes_all(features, relevance)
    else:
        relevance = global_mean_share(features, relevance)
    for index in reversed(range(len(network.blocks))):
        block = network.blocks[index]
        x = activations[index]
        relevance = maxpool_winner_takes_all(pre_pools[index], relevance)
        relevance = (first if index == 0 else other).conv(block, x, relevance, (low, high))
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
    model.check_input(flow)
    model.eval()
    lower, upper = input_bounds(
        flow, rules.get("bounds", "sample"), rules.get("low"), rules.get("high"), model
    )
    return propagate(
        fold(model, flow),
        flow,
        lower,
        upper,
        rules.get("start", "logit"),
        rules.get("first_layer", "zbeta"),
        rules.get("other_layers", "zplus"),
    )
