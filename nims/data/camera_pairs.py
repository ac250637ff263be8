"""``train.py dataset=davis_camera``: real flows for the frame classifier, frame labels only.

Every DAVIS-2016 sequence holds a moving object, so the flow between two consecutive frames is a
positive ("this frame holds salient motion"); the flow between a frame and a copy of itself
seen by a moving camera is a negative (camera motion only). The camera is a random homography
(zoom, roll, pan and a little perspective, :class:`CameraMotion`); the positive's second frame
is warped by the same homography, so both classes carry the same synthesised camera motion on
top of the video's own. No mask is read: the labels are the frames' only supervision.

The flows of each sequence are estimated once with the configured backend, resized to the
classifier's input and cached (``<cache_dir>/davis_camera/<key>/<sequence>.npz``, keyed by the
backend, the camera settings, the seed, the input size and the sequence's files). Splits are by
sequence (:func:`nims.synthetic.sets.split_videos`): a sequence's frames never cross splits.
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from joblib import Parallel, delayed
from omegaconf import OmegaConf
from torch.utils.data import Dataset
from tqdm import tqdm

from nims.atomic import replaced_atomically
from nims.data import davis
from nims.report import bars_off
from nims.resume import contents_identity
from nims.synthetic.sets import render_workers, split_videos

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CameraMotion:
    """Ranges of the random camera homography, each drawn uniformly in ``[-x, x]``.

    Attributes
    ----------
    zoom : float
        Relative scale change (0.03: +-3%).
    roll_degrees : float
        Rotation about the optical axis.
    pan_pixels : float
        Translation, pixels of the full-resolution frame.
    perspective : float
        Projective terms of the homography (1 / pixels).
    """

    zoom: float = 0.03
    roll_degrees: float = 1.5
    pan_pixels: float = 8.0
    perspective: float = 2.0e-5


def camera_homography(rng: np.random.Generator, width: int, height: int, motion: CameraMotion):
    """A ``(3, 3)`` homography about the frame's centre, drawn from ``motion``'s ranges."""
    scale = 1 + rng.uniform(-motion.zoom, motion.zoom)
    angle = np.deg2rad(rng.uniform(-motion.roll_degrees, motion.roll_degrees))
    tx, ty = rng.uniform(-motion.pan_pixels, motion.pan_pixels, 2)
    px, py = rng.uniform(-motion.perspective, motion.perspective, 2)
    centre = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]])
    model = np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), tx],
            [scale * np.sin(angle), scale * np.cos(angle), ty],
            [px, py, 1],
        ]
    )
    return np.linalg.inv(centre) @ model @ centre


def sequence_pairs(
    frames: Sequence[np.ndarray], estimate, motion: CameraMotion, seed: int, name: str, input_size
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative flows of one sequence at the classifier's input.

    Returns
    -------
    positives, negatives : arrays, shape (N - 1, 2, h, w), float32
        Pair ``i``: the flow from frame ``i`` to frame ``i + 1`` (positive), and to frame ``i``
        itself (negative), the second frame of both warped by one random homography; vectors
        in pixels of the ``(h, w) = input_size`` grid.
    """
    from nims.attribution import to_model_input

    height, width = frames[0].shape[:2]
    positives, negatives = [], []
    for index in range(len(frames) - 1):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), index])
        homography = camera_homography(rng, width, height, motion)

        def seen(image, homography=homography):
            return cv2.warpPerspective(
                image,
                homography,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )

        positive = estimate(frames[index], seen(frames[index + 1]))
        negative = estimate(frames[index], seen(frames[index]))
        pair = to_model_input([positive, negative], input_size).numpy()
        positives.append(pair[0])
        negatives.append(pair[1])
    return np.stack(positives), np.stack(negatives)


def _sequence_file(folder: Path, root: Path, name: str, resolution: str, description: dict) -> Path:
    """The cache file of one sequence's pairs: its name carries the bytes of the sequence's
    frames (:func:`nims.resume.contents_identity`)."""
    frames = davis.image_paths(root, name, resolution)
    key = hashlib.sha1(
        json.dumps({**description, "frames": contents_identity(frames)}, sort_keys=True).encode()
    ).hexdigest()[:12]
    return folder / f"{name}-{key}.npz"


def _build_sequence(path: Path, frame_paths: list[Path], name: str, flow_cfg, motion, seed, size):
    from nims.flow_backends import make_flow_estimator

    if path.is_file():
        return
    frames = [davis.read_image(p) for p in frame_paths]
    estimate = make_flow_estimator(OmegaConf.create(flow_cfg))
    positives, negatives = sequence_pairs(frames, estimate, motion, seed, name, size)
    buffer = io.BytesIO()
    np.savez(buffer, positives=positives, negatives=negatives)
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(buffer.getvalue())


def build_camera_pairs(
    dataset_cfg, flow_cfg, input_size, progress: bool = True
) -> dict[str, CameraPairs]:
    """The train / val / test splits of ``dataset=davis_camera`` (built or read from cache)."""
    from nims.benchmarks.davis_protocol import selected_sequences

    root = davis.resolve_root(dataset_cfg.root)
    names = selected_sequences(OmegaConf.create({"dataset": dataset_cfg}), root)
    motion = CameraMotion(**OmegaConf.to_container(dataset_cfg.camera, resolve=True))
    seed = int(dataset_cfg.seed)
    flow = OmegaConf.to_container(flow_cfg, resolve=True)
    size = [int(v) for v in input_size]
    description = {"flow": flow, "camera": asdict(motion), "seed": seed, "input_size": size}
    folder = Path(str(dataset_cfg.cache_dir)) / "davis_camera"
    resolution = str(dataset_cfg.resolution)
    paths = {name: _sequence_file(folder, root, name, resolution, description) for name in names}
    missing = [name for name in names if not paths[name].is_file()]
    if missing:
        jobs = tqdm(missing, desc="real flows (davis_camera)", disable=bars_off(progress))
        Parallel(n_jobs=render_workers(dataset_cfg))(
            delayed(_build_sequence)(
                paths[name],
                davis.image_paths(root, name, resolution),
                name,
                flow,
                motion,
                seed,
                size,
            )
            for name in jobs
        )
    splits = split_videos(len(names), seed)
    return {
        split: CameraPairs(
            [paths[names[i]] for i in splits[split]], [names[i] for i in splits[split]]
        )
        for split in SPLITS
    }


class CameraPairs(Dataset):
    """The pairs of some sequences as ``(flow (2, h, w) float32 tensor, label tensor)``.

    ``labels`` and ``videos`` list every item's label (1: consecutive frames, 0: a frame against
    itself) and sequence.
    """

    def __init__(self, paths: list[Path], names: list[str]):
        flows, self.labels, self.videos = [], [], []
        for path, name in zip(paths, names, strict=True):
            with np.load(path) as arrays:
                for label, key in ((1, "positives"), (0, "negatives")):
                    flows.append(arrays[key])
                    self.labels += [label] * len(arrays[key])
                    self.videos += [name] * len(arrays[key])
        self.flows = torch.from_numpy(np.concatenate(flows)) if flows else torch.empty(0)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.flows[index], torch.tensor(float(self.labels[index]))
