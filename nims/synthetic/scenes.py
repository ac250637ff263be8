"""A built-in frame-classification dataset: synthetic affine scenes with exact flow.

Each *video* has its own camera motion (an affine field that drifts from frame to frame); in
salient videos 1 to 3 objects move independently and are visible in most frames. A frame is
labelled salient when at least one mover is visible. Flows are generated on the fly at the
classifier's resolution, deterministically from ``(seed, video, frame)``, with optional noise
that mimics flow-estimation error; nothing is held in memory or written to disk.

The task datasets of the paper (crowd, independent motion with parallax) come with their own
generators; this one is the smallest set on which the classifier, its training and its
interpretation can be exercised end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from nims.synthetic.pairs import layered_flow
from nims.synthetic.sets import SPLITS


@dataclass(frozen=True)
class ScenesConfig:
    """Parameters of the synthetic scenes (``dataset=synthetic_scenes``)."""

    videos: int = 240
    frames_per_video: int = 16
    size: tuple[int, int] = (96, 176)
    salient_fraction: float = 0.5
    max_speed: float = 3.0
    noise: float = 0.1
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)


def video_splits(config: ScenesConfig) -> dict[str, list[int]]:
    """Video indices of each split, drawn once from the seed: frames never cross splits."""
    order = np.random.default_rng(config.seed).permutation(config.videos)
    train_end = int(round(config.split_fractions[0] * config.videos))
    val_end = train_end + int(round(config.split_fractions[1] * config.videos))
    return {
        "train": sorted(order[:train_end].tolist()),
        "val": sorted(order[train_end:val_end].tolist()),
        "test": sorted(order[val_end:].tolist()),
    }


def _video_plan(config: ScenesConfig, video: int):
    rng = np.random.default_rng([config.seed, video])
    height, width = config.size
    salient = rng.random() < config.salient_fraction
    camera = np.array(
        [
            [rng.uniform(-1, 1) * config.max_speed, rng.normal(0, 0.01), rng.normal(0, 0.01)],
            [rng.uniform(-1, 1) * config.max_speed, rng.normal(0, 0.01), rng.normal(0, 0.01)],
        ]
    )
    camera[:, 0] -= camera[:, 1] * width / 2 + camera[:, 2] * height / 2
    movers = []
    for _ in range(rng.integers(1, 4) if salient else 0):
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.5, 1.5) * config.max_speed
        movers.append(
            {
                "start": (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height),
                "axes": (rng.uniform(0.04, 0.1) * width, rng.uniform(0.08, 0.2) * height),
                "velocity": speed * np.array([np.cos(angle), np.sin(angle)]),
            }
        )
    return camera, movers


def scene_frame(config: ScenesConfig, video: int, frame: int):
    """Flow ``(H, W, 2)`` float32 (pixels at ``config.size``), label and mover mask of a frame."""
    camera, movers = _video_plan(config, video)
    rng = np.random.default_rng([config.seed, video, frame])
    height, width = config.size
    drift = camera.copy()
    drift[:, 0] += rng.normal(0, 0.2, 2)  # the camera motion changes a little from frame to frame
    layers = np.ones(config.size, dtype=np.int32)
    motions = [drift]
    for mover in movers:
        # Movers walk in a straight line across the video (and may leave the frame).
        centre = np.array(mover["start"]) + 4 * frame * mover["velocity"] / config.max_speed
        mask = np.zeros(config.size, dtype=np.uint8)
        cv2.ellipse(
            mask,
            (int(centre[0]), int(centre[1])),
            (int(mover["axes"][0]), int(mover["axes"][1])),
            0,
            0,
            360,
            1,
            -1,
        )
        motion = drift.copy()
        motion[:, 0] += mover["velocity"]
        motions.append(motion)
        layers[mask.astype(bool)] = len(motions)
    flow = layered_flow(layers, motions)
    if config.noise > 0:
        flow += rng.normal(0, config.noise, flow.shape).astype(np.float32)
    movers_mask = layers > 1
    return flow, int(movers_mask.any()), movers_mask


class FlowFrames(Dataset):
    """Frames of a split as ``(flow (2, H, W) float32 tensor, label float tensor)``.

    ``labels`` and ``videos`` list every frame's label and video (for metrics and splits).
    """

    def __init__(self, config: ScenesConfig, split: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.config = config
        self.items = [
            (video, frame)
            for video in video_splits(config)[split]
            for frame in range(config.frames_per_video)
        ]
        self.labels = [scene_frame(config, v, f)[1] for v, f in self.items]
        self.videos = [video for video, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        flow, label, _ = scene_frame(self.config, *self.items[index])
        return torch.from_numpy(flow.transpose(2, 0, 1).copy()), torch.tensor(float(label))


def build_scenes(dataset_cfg, input_size: Sequence[int]) -> dict[str, FlowFrames]:
    """The three splits of ``dataset=synthetic_scenes`` at the classifier's resolution."""
    config = ScenesConfig(
        videos=int(dataset_cfg.videos),
        frames_per_video=int(dataset_cfg.frames_per_video),
        size=tuple(int(v) for v in input_size),
        salient_fraction=float(dataset_cfg.salient_fraction),
        max_speed=float(dataset_cfg.max_speed),
        noise=float(dataset_cfg.noise),
        seed=int(dataset_cfg.seed),
    )
    return {split: FlowFrames(config, split) for split in SPLITS}
