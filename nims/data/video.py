"""Any video readable by OpenCV, or a folder of frames: ``dataset=video input=<path>``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def frame_files(folder: Path) -> list[Path]:
    """Image files of a folder in frame order: names compared with their digit runs as
    numbers (``2.png`` before ``10.png``, as for zero-padded names).

    Raises
    ------
    FileNotFoundError
        When the folder holds no image.
    ValueError
        When two names give one position (``1.png`` and ``01.png``, ``00002.jpg`` and
        ``00002.png``): their order cannot be told.
    """
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    keyed = sorted((_frame_order(path), path.name, path) for path in files)
    for (key, name, _), (next_key, next_name, _) in pairwise(keyed):
        if key == next_key:
            raise ValueError(
                f"frames {name} and {next_name} in {folder} have the same number: their order "
                "cannot be told; remove or rename one"
            )
    return [path for _, _, path in keyed]


def _frame_order(path: Path) -> tuple:
    """Sort key of a frame file: its stem split into text and numbers."""
    parts = re.split(r"(\d+)", path.stem.lower())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


def read_frames(source, max_frames: int | None = None, step: int = 1) -> Iterator[np.ndarray]:
    """Frames ``(H, W, 3)`` uint8 BGR of a video file or an image folder, in order.

    Parameters
    ----------
    source : path
        A video file OpenCV can open, or a folder of images.
    max_frames : int, optional
        Stop after this many frames.
    step : int
        Keep one frame in ``step`` (a lower frame rate, larger displacements).

    Raises
    ------
    FileNotFoundError / ValueError
        Missing input, a video that cannot be opened, unreadable or differently sized frames.
    """
    source = Path(source)
    if step < 1:
        raise ValueError(f"frame step must be >= 1, got {step}")
    if not source.exists():
        raise FileNotFoundError(
            f"input {source} does not exist: give a video file or a folder of frames (input=<path>)"
        )
    frames = _folder_frames(source, step) if source.is_dir() else _video_frames(source, step)
    shape = None
    for count, (frame, name) in enumerate(frames, 1):
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ValueError(
                f"frame {name} is {frame.shape[1]}x{frame.shape[0]}, the first "
                f"frame is {shape[1]}x{shape[0]}: frames must share one size"
            )
        yield frame
        if max_frames is not None and count >= max_frames:
            return


def _folder_frames(folder: Path, step: int) -> Iterator[tuple[np.ndarray, Path]]:
    """``(image, its path)`` for one image in ``step`` of a folder, each decoded in full
    (:func:`nims.data.davis.read_image` refuses a truncated file)."""
    from nims.data.davis import read_image

    for index, path in enumerate(frame_files(folder)):
        if index % step == 0:
            yield read_image(path), path


def _video_frames(source: Path, step: int) -> Iterator[tuple[np.ndarray, str]]:
    """``(frame, its name)`` for one decoded frame in ``step`` of a video file. A video that
    stops before the frame count it announces is reported (its end is missing); one without
    a single readable frame is an error. Stopping early (``max_frames``) closes the file."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(
            f"OpenCV cannot open video {source}: an unknown container or codec, or a file cut "
            "short (an mp4 copied or downloaded in part has no index); check its size, convert "
            "it (e.g. to H.264 mp4) or extract its frames into a folder"
        )
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                yield frame, f"{index} of {source}"
            index += 1
    finally:
        capture.release()
    if 0 < index < announced:
        log.warning(
            "video %s announces %d frames but only %d could be decoded: it is cut "
            "short or damaged; the frames after %d are missing",
            source,
            announced,
            index,
            index - 1,
        )
    if index == 0:
        raise ValueError(f"video {source} holds no readable frame")
