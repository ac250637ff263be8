"""The frame-level motion-saliency classifier and its folded interpretation network.

Classifier (after Maczyta et al. 2019, as in the paper): three blocks of
``conv -> normalisation -> ReLU -> max-pool`` and one fully-connected layer giving one logit
("this frame holds salient motion"). Input: a flow field ``(B, 2, H, W)`` in pixels at the
classifier's input resolution (``input_size``). ``norm="batch"`` (task ``independent``) or
``"instance"`` (task ``crowd``: copes with changing flow magnitudes).

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
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from nims.atomic import replaced_atomically


class MotionClassifier(nn.Module):
    """Three conv blocks and a linear layer: flow ``(B, 2, H, W)`` -> logits ``(B,)``.

    Parameters
    ----------
    input_size : (int, int)
        ``(height, width)`` the flow is resized to; each side must be divisible by 8.
    channels : sequence of 3 ints
        Output channels of the three convolutions.
    kernel_sizes : sequence of 3 odd ints
        Kernel sizes (zero padding keeps the spatial size until each max-pool halves it).
    norm : {"batch", "instance"}
        Normalisation of every block.
    head : {"fc", "max"}
        ``fc``: the linear layer reads the flattened last feature map (the paper's classifier);
        ``max``: it reads each channel's global maximum, so a small salient object counts the
        same wherever it is (translation invariance, far fewer weights).
    """

    def __init__(
        self,
        input_size: Sequence[int] = (96, 176),
        channels: Sequence[int] = (16, 32, 64),
        kernel_sizes: Sequence[int] = (5, 3, 3),
        norm: str = "batch",
        head: str = "fc",
    ):
        super().__init__()
        if norm not in ("batch", "instance"):
            raise ValueError(f"model.norm must be 'batch' or 'instance', got {norm!r}")
        if head not in ("fc", "max"):
            raise ValueError(f"model.head must be 'fc' or 'max', got {head!r}")
        if len(channels) != 3 or len(kernel_sizes) != 3:
            raise ValueError("model.channels and model.kernel_sizes need 3 values (3 blocks)")
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"model.kernel_sizes must be odd, got {list(kernel_sizes)}")
        height, width = (int(v) for v in input_size)
        if height % 8 or width % 8 or height < 8 or width < 8:
            raise ValueError(
                f"model.input_size sides must be positive multiples of 8 (three "
                f"2x2 max-pools), got {list(input_size)}"
            )
        self.input_size = (height, width)
        self.norm = norm
        self.head = head
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        previous = 2
        for out_channels, kernel in zip(channels, kernel_sizes):
            self.convs.append(nn.Conv2d(previous, out_channels, kernel, padding=kernel // 2))
            self.norms.append(
                nn.BatchNorm2d(out_channels)
                if norm == "batch"
                else nn.InstanceNorm2d(out_channels, affine=True)
            )
            previous = out_channels
        self.fc = nn.Linear(
            previous * (height // 8) * (width // 8) if head == "fc" else previous, 1
        )
        # Per-channel range of the training flows (pixels at input_size), for LRP's z^beta rule
        # with bounds=dataset; NaN until set by training.
        self.register_buffer("input_low", torch.full((2,), float("nan")))
        self.register_buffer("input_high", torch.full((2,), float("nan")))

    def architecture(self) -> dict:
        """What a checkpoint must match to be loaded into this model."""
        return {
            "input_size": list(self.input_size),
            "channels": [conv.out_channels for conv in self.convs],
            "kernel_sizes": [conv.kernel_size[0] for conv in self.convs],
            "norm": self.norm,
            "head": self.head,
        }

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        check_model_input(flow, self.input_size)
        x = flow
        for conv, norm in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(norm(conv(x))), 2)
        return self.fc(head_features(x, self.head))[:, 0]


def head_features(x: torch.Tensor, head: str) -> torch.Tensor:
    """What the linear layer reads: the flattened map (``fc``) or channel maxima (``max``)."""
    return x.flatten(1) if head == "fc" else x.amax(dim=(2, 3))


def check_model_input(flow: torch.Tensor, input_size: Tuple[int, int]) -> None:
    """Raise a clear error for a flow batch the classifier cannot take."""
    if not isinstance(flow, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor flow batch, got {type(flow).__name__}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"expected a flow batch of shape (B, 2, H, W), got {tuple(flow.shape)} "
            "(flow fields are (H, W, 2) arrays: use nims.attribution.to_model_input)"
        )
    if tuple(flow.shape[2:]) != tuple(input_size):
        raise ValueError(
            f"flow batch is {tuple(flow.shape[2:])}, the classifier takes "
            f"{tuple(input_size)}: resize it with nims.flow.resize_flow"
        )
    if not torch.isfinite(flow).all():
        raise ValueError("flow batch holds NaN or infinite values")


@dataclass
class FoldedBlock:
    """One block of the interpretation network: ``relu(maxpool(conv(x, weight, bias)))``.

    ``weight`` is ``(C_out, C_in, k, k)`` or, for a per-sample fold (InstanceNorm),
    ``(B, C_out, C_in, k, k)``; ``bias`` is ``(C_out,)`` or ``(B, C_out)``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    padding: int

    def conv(self, x: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
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

    blocks: List[FoldedBlock]
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
def fold(model: MotionClassifier, flow: Optional[torch.Tensor] = None) -> InterpretationNetwork:
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
    for conv, norm in zip(model.convs, model.norms):
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


def build_model(model_cfg, task_cfg) -> MotionClassifier:
    """The classifier a config describes (``model`` group, normalisation from ``task.norm``)."""
    return MotionClassifier(
        input_size=list(model_cfg.input_size),
        channels=list(model_cfg.channels),
        kernel_sizes=list(model_cfg.kernel_sizes),
        norm=task_cfg.norm,
        head=model_cfg.get("head", "fc"),
    )


def save_checkpoint(path, model: MotionClassifier, task: str, config: dict, **extra) -> None:
    """Save weights with what is needed to rebuild and check them: architecture, task, the
    resolved config, plus ``extra`` (epoch, optimiser state, metrics...)."""
    save_atomically(
        {
            "model_state": model.state_dict(),
            "architecture": model.architecture(),
            "task": task,
            "config": config,
            **extra,
        },
        path,
    )


def save_atomically(data: dict, path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a run killed while
    saving leaves the previous checkpoint, never a truncated one that a resume would read."""
    with replaced_atomically(path) as temporary:
        torch.save(data, temporary)


def load_checkpoint(
    path, expected_task: Optional[str] = None, expected_architecture: Optional[dict] = None
) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing mismatches clearly."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        # weights_only: tensors, containers and primitive types only; a pickle that would run
        # code (a crafted or foreign file) is refused before anything in it executes.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ValueError(
            f"{path} is not a readable NIMS checkpoint: it is corrupt, or holds "
            "objects other than tensors and plain types, which are never "
            f"unpickled ({type(error).__name__}: {str(error)[:200]})"
        ) from error
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint:
        raise ValueError(f"{path} is not a NIMS classifier checkpoint (no model_state)")
    if expected_task is not None and checkpoint.get("task") is None:
        raise ValueError(
            f"{path} records no task: it was not written by train.py or "
            "nims.export; export it with python -m nims.export"
        )
    if expected_task is not None and checkpoint.get("task") != expected_task:
        raise ValueError(
            f"{path} is a classifier of task {checkpoint.get('task')!r}, not "
            f"{expected_task!r}: pass task={checkpoint.get('task')} or another "
            "checkpoint"
        )
    found = checkpoint.get("architecture")
    if expected_architecture is not None and found != expected_architecture:
        raise ValueError(
            f"{path} has architecture {found}, the config "
            f"asks for {expected_architecture}: set model.* to match it"
        )
    return checkpoint


def load_classifier(path, expected_task: Optional[str] = None) -> MotionClassifier:
    """Rebuild a classifier from a checkpoint, in eval mode."""
    checkpoint = load_checkpoint(path, expected_task)
    architecture = checkpoint["architecture"]
    model = MotionClassifier(
        architecture["input_size"],
        architecture["channels"],
        architecture["kernel_sizes"],
        architecture["norm"],
        architecture.get("head", "fc"),
    )
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as error:  # shapes or names that do not fit the recorded architecture
        raise ValueError(
            f"{path}: the weights do not match its recorded architecture "
            f"{architecture} ({str(error).splitlines()[0][:200]}); the file is "
            "damaged or was edited: export the checkpoint again"
        ) from error
    return model.eval()
