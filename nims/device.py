"""Where PyTorch runs: ``device=auto|cpu|cuda``, a key of every entry point that runs a network."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The device a config value names: ``auto`` is the GPU when PyTorch sees one, else the CPU.

    Raises
    ------
    ValueError
        For another value, or ``cuda`` without a visible CUDA device (a CPU build of PyTorch,
        or no GPU), naming the config ``key``.
    """
    name = str(name)
    if name not in DEVICE_CHOICES:
        raise ValueError(f"{key} must be one of {DEVICE_CHOICES}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{key}=cuda but PyTorch sees no CUDA device (a CPU build, or no GPU "
            f"here): use {key}=auto or {key}=cpu"
        )
    return torch.device(name)
