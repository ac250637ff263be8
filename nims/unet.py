"""The supervised baseline of the crowd experiment: a small U-Net from flow to salient mask.

Trained on the ground-truth masks of a synthetic task set (``train.py model=unet``), it is the
gold standard NIMS is compared with (paper: J 67.1 supervised vs 53.6 for NIMS on the crowd
set). Input: a flow batch ``(B, 2, H, W)`` at the model's resolution; output: mask logits
``(B, H, W)``. InstanceNorm makes it, like the crowd classifier, indifferent to the flow's scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nims.model import check_model_input


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections, ``len(channels) - 1`` 2x2 poolings.

    Parameters
    ----------
    input_size : (int, int)
        ``(height, width)``; divisible by ``2 ** (len(channels) - 1)``.
    channels : sequence of int
        Channels per level, e.g. ``(16, 32, 64)``.
    """

    def __init__(
        self, input_size: Sequence[int] = (96, 176), channels: Sequence[int] = (16, 32, 64)
    ):
        super().__init__()
        levels = len(channels)
        factor = 2 ** (levels - 1)
        if levels < 2 or any(int(side) % factor for side in input_size):
            raise ValueError(
                f"model.input_size {list(input_size)} must be divisible by "
                f"{factor} for {levels} U-Net levels (at least 2)"
            )
        self.input_size = tuple(int(v) for v in input_size)
        self.channels = [int(c) for c in channels]
        self.down = nn.ModuleList()
        previous = 2
        for width in self.channels:
            self.down.append(_double_conv(previous, width))
            previous = width
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(self.channels[:-1]):
            self.up.append(nn.ConvTranspose2d(previous, width, 2, stride=2))
            self.merge.append(_double_conv(2 * width, width))
            previous = width
        self.out = nn.Conv2d(previous, 1, 1)
        self.register_buffer("decision_logit", torch.zeros(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # U-Nets trained before the decision logit was calibrated decided at logit 0 (this
        # covers load_unet, resume and init_from alike).
        state_dict.setdefault(prefix + "decision_logit", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def architecture(self) -> dict:
        return {"model": "unet", "input_size": list(self.input_size), "channels": self.channels}

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        # Fully convolutional: it also takes the crops it is trained on (model.train_crop).
        check_model_input(flow, self.input_size, multiple_of=2 ** (len(self.channels) - 1))
        skips = []
        x = flow
        for index, block in enumerate(self.down):
            x = block(x)
            if index < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.out(x)[:, 0]


def load_unet(path, expected_task=None) -> UNet:
    """Rebuild a U-Net written by ``train.py model=unet``, in eval mode."""
    from nims.model import load_checkpoint

    checkpoint = load_checkpoint(path, expected_task)
    architecture = checkpoint["architecture"]
    if architecture.get("model") != "unet":
        raise ValueError(f"{path} is not a U-Net checkpoint (architecture {architecture})")
    model = UNet(architecture["input_size"], architecture["channels"])
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()
