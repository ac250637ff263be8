"""The classifier's interpretation network: what LRP propagates through.

Interpretation network (paper Fig. 1): the same function, with each normalisation folded into the
convolution before it and each max-pool moved before its ReLU:

- normalisation directly after a convolution is an affine map per channel, so
  ``norm(conv(x)) = conv'(x)`` with weights ``W * g / s`` and bias ``(b - m) * g / s + beta``;
  this holds for any sign of the scale ``g`` and at zero-padded borders (the padding belongs to
  the convolution, which is unchanged apart from its parameters), so no case must be refused;
- BatchNorm folds with its running statistics; InstanceNorm with the statistics of each sample,
  giving a convolution per sample (LRP then treats those statistics as constants);
- ``maxpool(relu(z)) = relu(maxpool(z))`` for every input, ReLU being non-decreasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nims.model import MotionClassifier, head_features


@dataclass
class FoldedBlock:
    """One block of the interpretation network: ``relu(maxpool(conv(x, weight, bias)))``.

    ``weight`` is ``(C_out, C_in, k, k)`` or, for a per-sample fold (InstanceNorm),
    ``(B, C_out, C_in, k, k)``; ``bias`` is ``(C_out,)`` or ``(B, C_out)``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    padding: int

    def conv(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The block's convolution of ``x`` with its weights (or given ones), bias excluded."""
        weight = self.weight if weight is None else weight
        if weight.ndim == 4:
            return F.conv2d(x, weight, padding=self.padding)
        # Per-sample weights: a grouped convolution over the batch.
        batch, out_channels = weight.shape[:2]
        grouped = F.conv2d(
            x.reshape(1, -1, *x.shape[2:]),
            weight.reshape(-1, *weight.shape[2:]),
            padding=self.padding,
            groups=batch,
        )
        return grouped.reshape(batch, out_channels, *grouped.shape[2:])

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.bias.ndim == 2 else self.bias[None]
        return self.conv(x) + bias[:, :, None, None]


@dataclass
class InterpretationNetwork:
    """The folded, reordered network of a classifier for one batch (see the module docstring)."""

    blocks: list[FoldedBlock]
    fc_weight: torch.Tensor
    fc_bias: torch.Tensor
    head: str = "fc"

    def forward(self, flow: torch.Tensor, keep: bool = False):
        """Logits ``(B,)``; with ``keep`` also, for LRP, the input of every block plus the final
        feature map, and every block's convolution output (before its max-pool)."""
        activations, pre_pools = [], []
        x = flow
        for block in self.blocks:
            activations.append(x)
            pre_pools.append(block.pre_activation(x))
            x = F.relu(F.max_pool2d(pre_pools[-1], 2))
        activations.append(x)
        logits = head_features(x, self.head) @ self.fc_weight[0] + self.fc_bias[0]
        return (logits, activations, pre_pools) if keep else logits


def _norm_statistics(norm: nn.Module, z: torch.Tensor):
    """Mean, standard deviation, scale and shift of a normalisation layer for input ``z``."""
    if isinstance(norm, nn.BatchNorm2d):
        if norm.training:
            raise ValueError(
                "fold a classifier in eval mode (model.eval()): BatchNorm in training "
                "mode normalises with the batch's statistics"
            )
        return norm.running_mean, torch.sqrt(norm.running_var + norm.eps), norm.weight, norm.bias
    # InstanceNorm: statistics of each sample and channel, biased variance as PyTorch computes.
    mean = z.mean(dim=(2, 3))
    std = torch.sqrt(z.var(dim=(2, 3), unbiased=False) + norm.eps)
    return mean, std, norm.weight, norm.bias


@torch.no_grad()
def fold(model: MotionClassifier, flow: torch.Tensor | None = None) -> InterpretationNetwork:
    """Build the interpretation network of ``model``.

    Parameters
    ----------
    model : MotionClassifier
        In eval mode.
    flow : tensor (B, 2, H, W), optional
        The batch to interpret; required for InstanceNorm, whose statistics depend on it.
    """
    if model.norm == "instance" and flow is None:
        raise ValueError("an InstanceNorm classifier folds per sample: pass the flow batch")
    blocks = []
    x = flow
    for conv, norm in zip(model.convs, model.norms, strict=True):
        weight, bias = conv.weight, conv.bias
        if model.norm == "instance":
            z = F.conv2d(x, weight, bias, padding=conv.padding)
            mean, std, gamma, beta = _norm_statistics(norm, z)
            factor = gamma[None] / std  # (B, C)
            folded_weight = weight[None] * factor[:, :, None, None, None]
            folded_bias = (bias[None] - mean) * factor + beta[None]
        else:
            mean, std, gamma, beta = _norm_statistics(norm, None)
            factor = gamma / std
            folded_weight = weight * factor[:, None, None, None]
            folded_bias = (bias - mean) * factor + beta
        block = FoldedBlock(folded_weight, folded_bias, conv.padding[0])
        blocks.append(block)
        if x is not None:
            x = F.relu(F.max_pool2d(block.pre_activation(x), 2))
    return InterpretationNetwork(blocks, model.fc.weight.clone(), model.fc.bias.clone(), model.head)
