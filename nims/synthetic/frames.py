"""A cached synthetic set (:func:`nims.synthetic.sets.build_set`) as PyTorch datasets: one
split's frames as ``(flow, label)`` samples for the classifier (:class:`SyntheticFrames`) or
``(flow, mask)`` pairs for the U-Net (:class:`MaskedFrames`). Frames are read through memory
maps: a set is streamed from disk, never held in RAM; the classifier's input is read from one
store per split at its input size, written on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nims.atomic import replaced_atomically
from nims.flow import resize_flow
from nims.report import read_json
from nims.synthetic.sets import SPLITS, build_set


class SyntheticFrames(Dataset):
    """Frames of a split of a cached set: ``(flow (2, h, w) float32 tensor, label tensor)``.

    Flows are resized (vectors rescaled) to ``input_size``, the classifier's resolution.
    """

    def __init__(self, folder: Path, split: str, input_size: Sequence[int]):
        if split not in SPLITS + ("all",):
            raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
        self.folder = Path(folder)
        self.manifest = read_json(
            self.folder / "manifest.json", f"delete {self.folder} to generate the set again"
        )
        self.input_size = tuple(int(v) for v in input_size)
        videos = (
            range(self.manifest["videos"]) if split == "all" else self.manifest["splits"][split]
        )
        self.items = [
            (video, frame)
            for video in videos
            for frame in range(len(self.manifest["labels"][video]))
        ]
        self.labels = [self.manifest["labels"][video][frame] for video, frame in self.items]
        self.videos = [video for video, _ in self.items]
        self.split = split
        self._maps: dict[int, dict[str, np.ndarray]] = {}
        self._training_flows: np.ndarray | None = None

    @property
    def training_flows(self) -> np.ndarray:
        """Every frame's flow at ``input_size``, ``(N, 2, h, w)`` float32 in pixels of that
        grid, in item order: one memory-mapped array, written once beside the set
        (``training/<split>-<h>x<w>.npy``) so that an epoch reads contiguous memory instead of
        resizing full-resolution flows sample by sample."""
        if self._training_flows is None:
            height, width = self.input_size
            path = self.folder / "training" / f"{self.split}-{height}x{width}.npy"
            if not path.is_file():
                self._write_training_flows(path)
            self._training_flows = np.load(path, mmap_mode="r")
        return self._training_flows

    def _write_training_flows(self, path: Path) -> None:
        height, width = self.input_size
        with replaced_atomically(path, suffix=".npy") as temporary:
            store = np.lib.format.open_memmap(
                temporary, mode="w+", dtype=np.float32, shape=(len(self.items), 2, height, width)
            )
            for index, (video, frame) in enumerate(self.items):
                flow = np.asarray(self.video_arrays(video)["flows"][frame], dtype=np.float32)
                store[index] = resize_flow(flow, self.input_size).transpose(2, 0, 1)
            store.flush()
            del store

    def video_arrays(self, video: int) -> dict[str, np.ndarray]:
        """Memory maps of one video's arrays (frames, flows, masks, others, labels)."""
        if video not in self._maps:
            base = self.folder / f"video_{video:04d}"
            self._maps[video] = {
                path.stem: np.load(path, mmap_mode="r") for path in base.glob("*.npy")
            }
        return self._maps[video]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return torch.from_numpy(np.array(self.training_flows[index])), torch.tensor(
            float(self.labels[index])
        )

    def __getitems__(self, indices: list[int]) -> list:
        """A batch's samples in one read of the store (what ``DataLoader`` asks for)."""
        flows = torch.from_numpy(self.training_flows[np.asarray(indices, dtype=np.int64)])
        labels = torch.tensor([float(self.labels[index]) for index in indices])
        return list(zip(flows, labels, strict=True))

    def mask(self, index: int) -> torch.Tensor:
        """The salient objects' mask of a frame at ``input_size``, ``(h, w)`` float 0/1."""
        import cv2

        video, frame = self.items[index]
        mask = np.asarray(self.video_arrays(video)["masks"][frame], dtype=np.uint8)
        resized = cv2.resize(mask, self.input_size[::-1], interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(resized.astype(np.float32))


class MaskedFrames(Dataset):
    """A split as ``(flow, mask)`` pairs, for the supervised U-Net."""

    def __init__(self, frames: SyntheticFrames):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        return self.frames[index][0], self.frames.mask(index)


def build_synthetic_frames(
    dataset_cfg, flow_cfg, input_size, progress: bool = True
) -> dict[str, SyntheticFrames]:
    folder = build_set(dataset_cfg, flow_cfg, progress)
    return {split: SyntheticFrames(folder, split, input_size) for split in SPLITS}
