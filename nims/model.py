"""The frame-level motion-saliency classifier and its checkpoints.

Classifier (after Maczyta et al. 2019, as in the paper): three blocks of
``conv -> normalisation -> ReLU -> max-pool`` and one fully-connected layer giving one logit
("this frame holds salient motion"). Input: a flow field ``(B, 2, H, W)`` in pixels at the
classifier's input resolution (``input_size``). ``norm="batch"`` (task ``independent``) or
``"instance"`` (task ``crowd``: copes with changing flow magnitudes).

Its interpretation network (norms folded into the convolutions) is in :mod:`nims.folding`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    head : {"fc", "max", "mean"}
        ``fc``: the linear layer reads the flattened last feature map (the paper's classifier);
        ``max``: it reads each channel's global maximum, so a small salient object counts the
        same wherever it is (translation invariance, far fewer weights); ``mean``: each
        channel's mean over positions (every position contributes, so the relevance covers
        all of the evidence rather than each channel's strongest point).
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
        if head not in HEADS:
            raise ValueError(f"model.head must be one of {HEADS}, got {head!r}")
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
        for out_channels, kernel in zip(channels, kernel_sizes, strict=True):
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

    @property
    def fully_convolutional(self) -> bool:
        """Whether the weights fit any input size: the ``max`` and ``mean`` heads read one
        value per channel, the ``fc`` head a map of ``input_size / 8``."""
        return self.head != "fc"

    def check_input(self, flow: torch.Tensor) -> None:
        """Raise a clear error for a flow batch this classifier cannot take
        (:func:`check_model_input`: its input size, or any multiple of 8 when fully
        convolutional)."""
        check_model_input(flow, self.input_size, 8 if self.fully_convolutional else None)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` of a flow batch ``(B, 2, h, w)`` at ``input_size``; a fully
        convolutional classifier also takes any sides that are multiples of 8 (training at
        several scales, ``trainer.scales``; deciding at several, ``decision.scales``)."""
        self.check_input(flow)
        x = flow
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.max_pool2d(F.relu(norm(conv(x))), 2)
        return self.fc(head_features(x, self.head))[:, 0]


HEADS = ("fc", "max", "mean")


def sides_times(size: Sequence[int], factor: float) -> tuple[int, int]:
    """``(height, width)`` times ``factor``, each side rounded to a multiple of 8 (at least 8):
    a size the three 2x2 max-pools of the classifier divide."""
    return tuple(max(8, 8 * round(int(side) * factor / 8)) for side in size)


def weights_architecture(architecture: dict) -> dict:
    """What of a classifier's ``architecture`` its weights depend on: all of it, but the input
    size when the head reads one value per channel (``max``, ``mean``)."""
    if architecture.get("head", "fc") == "fc":
        return dict(architecture)
    return {key: value for key, value in architecture.items() if key != "input_size"}


def head_features(x: torch.Tensor, head: str) -> torch.Tensor:
    """What the linear layer reads: the flattened map (``fc``), channel maxima (``max``) or
    channel means (``mean``)."""
    if head == "fc":
        return x.flatten(1)
    return x.amax(dim=(2, 3)) if head == "max" else x.mean(dim=(2, 3))


def check_model_input(
    flow: torch.Tensor, input_size: tuple[int, int], multiple_of: int | None = None
) -> None:
    """Raise a clear error for a flow batch the classifier cannot take: one of ``input_size``,
    or with ``multiple_of`` (a fully convolutional network) any size whose sides it divides."""
    if not isinstance(flow, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor flow batch, got {type(flow).__name__}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"expected a flow batch of shape (B, 2, H, W), got {tuple(flow.shape)} "
            "(flow fields are (H, W, 2) arrays: use nims.attribution.to_model_input)"
        )
    if multiple_of is not None:
        if any(int(side) % multiple_of for side in flow.shape[2:]):
            raise ValueError(
                f"flow batch is {tuple(flow.shape[2:])}: its sides must be multiples of "
                f"{multiple_of}"
            )
    elif tuple(flow.shape[2:]) != tuple(input_size):
        raise ValueError(
            f"flow batch is {tuple(flow.shape[2:])}, the classifier takes "
            f"{tuple(input_size)}: resize it with nims.flow.resize_flow"
        )
    if not torch.isfinite(flow).all():
        raise ValueError("flow batch holds NaN or infinite values")


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
    path, expected_task: str | None = None, expected_architecture: dict | None = None
) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing mismatches clearly."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"checkpoint {path} is a folder: give the checkpoint file in it (e.g. "
            f"{path / 'best.pt'})"
        )
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        raise FileNotFoundError(
            f"checkpoint {path} does not exist{where}: give its path (absolute, or from the "
            "folder you run in); train one with python train.py"
        )
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


def load_classifier(path, expected_task: str | None = None) -> MotionClassifier:
    """Rebuild a classifier from a checkpoint, in eval mode."""
    checkpoint = load_checkpoint(path, expected_task)
    architecture = checkpoint.get("architecture") or {}
    if architecture.get("model") == "unet":
        raise ValueError(
            f"{path} is a U-Net checkpoint (train.py model=unet), not a frame classifier: "
            f"score it with method=unet checkpoint={path}, or give a classifier's checkpoint"
        )
    missing = [
        key for key in ("input_size", "channels", "kernel_sizes", "norm") if key not in architecture
    ]
    if missing:
        raise ValueError(
            f"{path} records no classifier architecture ({', '.join(missing)} missing): it was "
            "not written by train.py or nims.export; export it with python -m nims.export"
        )
    broken = [
        name
        for name, value in checkpoint["model_state"].items()
        if value.is_floating_point()
        and not torch.isfinite(value).all()
        and name not in ("input_low", "input_high")
    ]
    if broken:
        raise ValueError(
            f"{path} holds NaN or infinite weights ({', '.join(broken[:4])}): the training "
            "that wrote it diverged; use an earlier checkpoint (best.pt) or train again"
        )
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
