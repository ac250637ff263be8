"""DAVIS-2016 in its official layout, and results folders in the official results layout.

Dataset layout (``root`` is the folder holding ``JPEGImages`` and ``Annotations``)::

    root/JPEGImages/480p/<sequence>/00000.jpg ...
    root/Annotations/480p/<sequence>/00000.png ...   (mode L, 0 / 255)
    root/ImageSets/480p/{train,val}.txt              (optional: frame lists)
    root/ImageSets/2016/{train,val}.txt              (optional: sequence names)

Without ``ImageSets`` the built-in DAVIS-2016 split lists are used. A results folder holds
``<sequence>/NNNNN.png`` masks (any nonzero pixel is foreground), numbered like the annotations
from 00000, or from 00001 (then shifted by one).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

DAVIS_2016_SPLITS: Dict[str, List[str]] = {
    "train": [
        "bear",
        "bmx-bumps",
        "boat",
        "breakdance-flare",
        "bus",
        "car-turn",
        "dance-jump",
        "dog-agility",
        "drift-turn",
        "elephant",
        "flamingo",
        "hike",
        "hockey",
        "horsejump-low",
        "kite-walk",
        "lucia",
        "mallard-fly",
        "mallard-water",
        "motocross-bumps",
        "motorbike",
        "paragliding",
        "rhino",
        "rollerblade",
        "scooter-gray",
        "soccerball",
        "stroller",
        "surf",
        "swing",
        "tennis",
        "train",
    ],
    "val": [
        "blackswan",
        "bmx-trees",
        "breakdance",
        "camel",
        "car-roundabout",
        "car-shadow",
        "cows",
        "dance-twirl",
        "dog",
        "drift-chicane",
        "drift-straight",
        "goat",
        "horsejump-high",
        "kite-surf",
        "libby",
        "motocross-jump",
        "paragliding-launch",
        "parkour",
        "scooter-black",
        "soapbox",
    ],
}
_FRAME_NAME = re.compile(r"^(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)


def resolve_root(root: Optional[str]) -> Path:
    """Check a DAVIS root folder and return it as a Path.

    Raises
    ------
    FileNotFoundError
        Naming the folder and how to point the repo at DAVIS.
    """
    if not root:
        raise FileNotFoundError(
            "no DAVIS root configured: set dataset.root=<folder holding JPEGImages/ and "
            "Annotations/> or the NIMS_DATA environment variable (DAVIS is then "
            "$NIMS_DATA/DAVIS)"
        )
    path = Path(os.path.expanduser(str(root)))
    if not (path / "Annotations").is_dir() and not (path / "JPEGImages").is_dir():
        raise FileNotFoundError(
            f"DAVIS root {path} not found or not in the official layout (expected "
            f"{path / 'JPEGImages' / '480p'} and {path / 'Annotations' / '480p'}): set "
            "dataset.root=<path> or NIMS_DATA; download DAVIS-2016 from the DAVIS challenge site"
        )
    return path


def split_sequences(root: Path, split: str, resolution: str = "480p") -> List[str]:
    """Sequence names of a split, from ``ImageSets`` when present, else the built-in lists."""
    for list_file in (
        root / "ImageSets" / resolution / f"{split}.txt",
        root / "ImageSets" / "2016" / f"{split}.txt",
    ):
        if list_file.is_file():
            names = []
            for line in list_file.read_text().split("\n"):
                line = line.strip()
                if not line:
                    continue
                # Frame lists hold "/JPEGImages/480p/<seq>/00000.jpg ..."; sequence lists names.
                name = Path(line.split()[0]).parent.name if "/" in line else line
                if name not in names:
                    names.append(name)
            return names
    if split not in DAVIS_2016_SPLITS:
        raise ValueError(
            f"unknown DAVIS-2016 split {split!r}: use one of "
            f"{sorted(DAVIS_2016_SPLITS)} or add {root}/ImageSets/2016/{split}.txt"
        )
    return list(DAVIS_2016_SPLITS[split])


def _numbered_files(folder: Path, suffixes: Sequence[str]) -> Dict[int, Path]:
    files = {}
    for path in folder.iterdir():
        match = _FRAME_NAME.match(path.name)
        if match and path.suffix.lower() in suffixes:
            files[int(match.group(1))] = path
    return files


def annotation_paths(root: Path, sequence: str, resolution: str = "480p") -> List[Path]:
    """Ground-truth mask files of a sequence, in frame order."""
    folder = root / "Annotations" / resolution / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence {sequence!r}: annotation folder {folder} is missing")
    files = _numbered_files(folder, (".png",))
    if not files:
        raise FileNotFoundError(f"sequence {sequence!r}: no NNNNN.png annotation in {folder}")
    expected = list(range(min(files), min(files) + len(files)))
    if sorted(files) != expected:
        missing = sorted(set(expected) - set(files))
        raise FileNotFoundError(
            f"sequence {sequence!r}: annotations are not consecutive in {folder} "
            f"(missing {missing[:5]})"
        )
    return [files[index] for index in expected]


def image_paths(root: Path, sequence: str, resolution: str = "480p") -> List[Path]:
    """Frame files of a sequence, in frame order."""
    folder = root / "JPEGImages" / resolution / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence {sequence!r}: image folder {folder} is missing")
    files = _numbered_files(folder, (".jpg", ".jpeg", ".png"))
    if not files:
        raise FileNotFoundError(f"sequence {sequence!r}: no NNNNN.jpg frame in {folder}")
    expected = list(range(min(files), min(files) + len(files)))
    if sorted(files) != expected:
        # A gap would pair every later frame with its neighbour's annotation.
        missing = sorted(set(range(min(files), max(files) + 1)) - set(files))
        raise FileNotFoundError(
            f"sequence {sequence!r}: frames are not consecutive in {folder} "
            f"(missing {missing[:5]}): restore them or remove the sequence"
        )
    return [files[index] for index in expected]


def read_mask(path: Path, shape=None, reference: str = "the annotation's") -> np.ndarray:
    """Read a mask PNG as ``(H, W)`` bool (any nonzero pixel, in any channel, is foreground).

    Raises
    ------
    ValueError
        When the file cannot be decoded or its size differs from ``shape`` ``(H, W)``, whose
        origin ``reference`` names in the message.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"cannot read mask {path}: missing, truncated or not an image")
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    mask = mask != 0
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(
            f"mask {path} has size {mask.shape[1]}x{mask.shape[0]}, expected "
            f"{shape[1]}x{shape[0]} ({reference})"
        )
    return mask


def read_image(path: Path) -> np.ndarray:
    """Read a frame as ``(H, W, 3)`` uint8 BGR, with a clear error for unreadable files.

    A truncated file is refused: OpenCV would decode it partly, fill the rest with grey and
    only warn on stderr, so the frame is first decoded in full by Pillow, which raises.
    """
    from PIL import Image

    try:
        with Image.open(path) as decoded:
            decoded.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"cannot read image {path}: missing, truncated or not an image "
            f"({error}); restore the file"
        ) from error
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing, truncated or not an image")
    return image


def _detect_first_index(files: Dict[int, Path], n_frames: int, folder: Path) -> str:
    """``"0"`` or ``"1"``: the numbering under which every scored frame (1 .. n_frames - 2
    in annotation numbers) has a file; an error when both or neither fit."""
    scored = range(1, n_frames - 1)
    fits = [
        offset for offset in ("0", "1") if all(frame + int(offset) in files for frame in scored)
    ]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        return "0"  # the caller names the first missing frame
    # Both fit: only the unscored ends can tell (00000 or one past the last annotation).
    if 0 in files and n_frames not in files:
        return "0"
    if n_frames in files and 0 not in files:
        return "1"
    raise ValueError(
        f"predictions in {folder}: files numbered 0..{max(files)} fit both "
        f"numberings of the {n_frames} annotations; set predictions_first_index="
        "0 (file 00000 is annotation 00000) or 1"
    )


def prediction_paths(
    folder: Path, sequence: str, n_frames: int, first_index: str = "auto"
) -> List[Optional[Path]]:
    """Mask files of a results folder aligned to a sequence's ``n_frames`` annotations.

    Parameters
    ----------
    folder : Path
        Results folder holding ``<sequence>/NNNNN.png``.
    n_frames : int
        Number of annotated frames.
    first_index : {"auto", "0", "1"}
        Number of the file matching annotation 00000. ``auto``: the numbering under which
        every scored frame has a file; when both fit, 1 if there is no 00000.png but a file
        numbered ``n_frames`` (one past the last annotation), 0 in the opposite case, an
        error when both or neither end is there.

    Returns
    -------
    list of Path or None
        One entry per annotation; None only for the first or last frame, which the protocol
        does not score.

    Raises
    ------
    FileNotFoundError
        Naming the missing sequence folder or the first missing scored frame.
    """
    sequence_folder = Path(folder) / sequence
    if not sequence_folder.is_dir():
        raise FileNotFoundError(
            f"predictions for sequence {sequence!r} missing: no folder {sequence_folder}"
        )
    files = _numbered_files(sequence_folder, (".png",))
    first_index = str(first_index)
    if first_index == "auto":
        first_index = _detect_first_index(files, n_frames, sequence_folder)
    if first_index not in ("0", "1"):
        raise ValueError(f"predictions_first_index must be auto, 0 or 1, got {first_index!r}")
    offset = int(first_index)
    aligned = [files.get(frame + offset) for frame in range(n_frames)]
    for frame in range(1, n_frames - 1):
        if aligned[frame] is None:
            raise FileNotFoundError(
                f"predictions for {sequence!r}: frame {frame} missing "
                f"(expected {sequence_folder / f'{frame + offset:05d}.png'})"
            )
    return aligned


def check_sequence(root: Path, sequence: str, resolution: str = "480p"):
    """Frame and annotation files of a sequence, checked against each other.

    Raises
    ------
    ValueError
        When the numbers of frames and annotations differ (naming both folders).
    """
    frames = image_paths(root, sequence, resolution)
    annotations = annotation_paths(root, sequence, resolution)
    if len(frames) < 3:
        raise ValueError(
            f"sequence {sequence!r} has {len(frames)} frame(s) in "
            f"{frames[0].parent}: the DAVIS protocol scores all but the first and "
            "last, so a sequence needs at least 3"
        )
    if len(frames) != len(annotations):
        raise ValueError(
            f"sequence {sequence!r}: {len(frames)} frames in {frames[0].parent} but "
            f"{len(annotations)} annotations in {annotations[0].parent}; they must match"
        )
    return frames, annotations


class FrameSequence:
    """Frames of a sequence read from disk on access: ``frames[i]`` is ``(H, W, 3)`` uint8 BGR."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])
