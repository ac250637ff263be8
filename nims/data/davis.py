"""DAVIS-2016 in its official layout (results folders: :mod:`nims.data.davis_results`).

Dataset layout (``root`` is the folder holding ``JPEGImages`` and ``Annotations``)::

    root/JPEGImages/480p/<sequence>/00000.jpg ...
    root/Annotations/480p/<sequence>/00000.png ...   (mode L, 0 / 255)
    root/ImageSets/480p/{train,val}.txt              (optional: frame lists)
    root/ImageSets/2016/{train,val}.txt              (optional: sequence names)

Without ``ImageSets`` the built-in DAVIS-2016 split lists are used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

DAVIS_2016_SPLITS: dict[str, list[str]] = {
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


def resolve_root(root: str | None) -> Path:
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


def split_sequences(root: Path, split: str, resolution: str = "480p") -> list[str]:
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


def numbered_files(folder: Path, suffixes: Sequence[str]) -> dict[int, Path]:
    """``{frame number: file}`` of the ``NNNNN.<suffix>`` files of ``folder``.

    Raises
    ------
    ValueError
        When two files carry one frame number (``00002.jpg`` and ``00002.png``, ``2.png`` and
        ``00002.png``): which one is meant cannot be told, so neither is picked.
    """
    files: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _FRAME_NAME.match(path.name)
        if match and path.suffix.lower() in suffixes:
            number = int(match.group(1))
            if number in files:
                raise ValueError(
                    f"two files for frame {number} in {folder}: {files[number].name} and "
                    f"{path.name}; remove or rename one"
                )
            files[number] = path
    return files


def annotation_paths(root: Path, sequence: str, resolution: str = "480p") -> list[Path]:
    """Ground-truth mask files of a sequence, in frame order."""
    folder = root / "Annotations" / resolution / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence {sequence!r}: annotation folder {folder} is missing")
    files = numbered_files(folder, (".png",))
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


def image_paths(root: Path, sequence: str, resolution: str = "480p") -> list[Path]:
    """Frame files of a sequence, in frame order."""
    folder = root / "JPEGImages" / resolution / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence {sequence!r}: image folder {folder} is missing")
    files = numbered_files(folder, (".jpg", ".jpeg", ".png"))
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
    """Read a mask PNG as ``(H, W)`` bool: any nonzero pixel, in any colour channel, is
    foreground; an alpha channel is ignored (an opaque alpha would otherwise make every pixel
    foreground).

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
        # OpenCV reads grey+alpha and RGBA alike as 4 channels, alpha last.
        colour = mask[..., :3] if mask.shape[2] == 4 else mask
        mask = colour.any(axis=2)
    mask = mask != 0
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(
            f"mask {path} has size {mask.shape[1]}x{mask.shape[0]}, expected "
            f"{shape[1]}x{shape[0]} ({reference})"
        )
    return mask


_EXIF_ORIENTATION = 0x0112


def read_image(path: Path) -> np.ndarray:
    """Read a frame as ``(H, W, 3)`` uint8 BGR, with a clear error for unreadable files.

    A truncated file is refused: OpenCV would decode it partly, fill the rest with grey and
    only warn on stderr, so the frame is first decoded in full by Pillow, which raises. A frame
    tagged with an EXIF orientation other than "as stored" is refused too: OpenCV would rotate
    it, annotations and flows computed elsewhere would not be.
    """
    from PIL import Image

    try:
        with Image.open(path) as decoded:
            decoded.load()
            orientation = decoded.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"cannot read image {path}: missing, truncated or not an image "
            f"({error}); restore the file"
        ) from error
    if orientation != 1:
        raise ValueError(
            f"image {path} carries EXIF orientation {orientation} (shown rotated or mirrored): "
            "its pixels and its annotation would disagree; save it with the rotation applied "
            "and the tag removed (e.g. PIL.ImageOps.exif_transpose)"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing, truncated or not an image")
    return image


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
    first_frame, first_annotation = frame_number(frames[0]), frame_number(annotations[0])
    if first_frame != first_annotation:
        # Paired by position, every frame would be scored against its neighbour's mask.
        raise ValueError(
            f"sequence {sequence!r}: frames are numbered from {first_frame:05d} in "
            f"{frames[0].parent}, annotations from {first_annotation:05d} in "
            f"{annotations[0].parent}; frame and annotation of one number are paired, so "
            "renumber one folder"
        )
    return frames, annotations


def frame_number(path: Path) -> int:
    """The frame number of an ``NNNNN.<suffix>`` file."""
    return int(_FRAME_NAME.match(path.name).group(1))


class FrameSequence:
    """Frames of a sequence read from disk on access: ``frames[i]`` is ``(H, W, 3)`` uint8 BGR."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])
