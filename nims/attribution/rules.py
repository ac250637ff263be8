"""LRP rules: how one layer hands the relevance at its output to its input.

Each rule is a small class with ``linear`` (the one-output classifier layer) and ``conv`` (a
folded convolution block, :class:`nims.folding.FoldedBlock`) methods; :data:`RULES` maps the names
the ``lrp_rules`` config uses (``first_layer``, ``other_layers``) to them. Biases are left out of
every rule, so relevance is conserved layer to layer (up to the stabiliser).

- ``zplus``: ``R_i = sum_j x_i w+_ij / (sum_i' x_i' w+_i'j) R_j``, for non-negative inputs
  (after a ReLU);
- ``zbeta``: ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / z_j R_j`` with the admissible
  input bounds ``l <= x <= h``, for the signed flow at the first convolution;
- ``epsilon``: ``R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j``, for comparison.
"""

from __future__ import annotations

import torch

from nims.registry import Registry

RULES: Registry = Registry("LRP rule")
STABILISER = 1e-9  # keeps 0/0 defined; far below any activation of a trained network


def stabilise(z: torch.Tensor, epsilon: float = STABILISER) -> torch.Tensor:
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0)


def _through_conv(block, inputs, weights, relevance: torch.Tensor) -> torch.Tensor:
    """``sum_k inputs_k * d(z)/d(inputs_k) * relevance / z`` with ``z = sum_k conv(inputs_k,
    weights_k)``: the relevance a convolution hands back to ``inputs`` (their sum)."""
    inputs = [value.detach().requires_grad_(True) for value in inputs]
    with torch.enable_grad():
        z = sum(block.conv(value, weight) for value, weight in zip(inputs, weights, strict=True))
        gradients = torch.autograd.grad(z, inputs, grad_outputs=relevance / stabilise(z))
    return sum(value * gradient for value, gradient in zip(inputs, gradients, strict=True)).detach()


@RULES.register("zplus")
class ZPlus:
    """The z+ rule (positive weights only), for layers whose input is non-negative."""

    def linear(
        self, x: torch.Tensor, weight: torch.Tensor, relevance: torch.Tensor
    ) -> torch.Tensor:
        """``x (B, D) >= 0``, ``weight (D,)``, ``relevance (B,)`` -> ``(B, D)``."""
        positive = weight.clamp(min=0)
        z = x @ positive
        return x * positive[None] * (relevance / stabilise(z))[:, None]

    def conv(self, block, x: torch.Tensor, relevance: torch.Tensor, bounds=None) -> torch.Tensor:
        return _through_conv(block, [x], [block.weight.clamp(min=0)], relevance)


@RULES.register("zbeta")
class ZBeta:
    """The z^beta rule, for the signed input of the first convolution: ``bounds = (low, high)``,
    ``low <= x <= high``, each broadcastable to ``x``."""

    def linear(self, x, weight, relevance):
        raise ValueError(
            "lrp_rules: zbeta is a rule for the first convolution (the flow "
            "input), not for the classifier's linear layer"
        )

    def conv(self, block, x: torch.Tensor, relevance: torch.Tensor, bounds=None) -> torch.Tensor:
        if bounds is None:
            raise ValueError("the zbeta rule needs the input bounds (low, high)")
        low, high = bounds
        # z = conv(x, w) - conv(l, w+) - conv(h, w-); relevance goes to x, l and h together.
        return _through_conv(
            block,
            [x, low.expand_as(x).clone(), high.expand_as(x).clone()],
            [block.weight, -block.weight.clamp(min=0), -block.weight.clamp(max=0)],
            relevance,
        )


@RULES.register("epsilon")
class Epsilon:
    """The epsilon rule (all weights, a stabiliser ``epsilon`` on the denominator)."""

    def __init__(self, epsilon: float = 1e-2):
        self.epsilon = epsilon

    def linear(
        self, x: torch.Tensor, weight: torch.Tensor, relevance: torch.Tensor
    ) -> torch.Tensor:
        z = x @ weight
        return x * weight[None] * (relevance / stabilise(z, self.epsilon))[:, None]

    def conv(self, block, x: torch.Tensor, relevance: torch.Tensor, bounds=None) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            z = block.conv(x, block.weight)
            (gradient,) = torch.autograd.grad(
                z, x, grad_outputs=relevance / stabilise(z, self.epsilon)
            )
        return (x * gradient).detach()


def rule(name: str):
    """The rule ``name`` names (``zplus``, ``zbeta``, ``epsilon``)."""
    try:
        return RULES.get(str(name))()
    except KeyError as error:
        raise ValueError(f"lrp_rules: {error.args[0]}") from None
