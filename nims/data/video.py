"""Any video readable by OpenCV, or a folder of frames: ``dataset=video input=<path>``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def frame_files(folder: Path) -> List[Path]:
    """Image files of a folder in name order."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return files


def read_frames(source, max_frames: Optional[int] = None, step: int = 1) -> Iterator[np.ndarray]:
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
        if frame is None:
            raise ValueError(f"cannot read frame {name}: truncated or not an image")
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


def _folder_frames(folder: Path, step: int) -> Iterator[Tuple[Optional[np.ndarray], Path]]:
    """``(image or None when unreadable, its path)`` for one image in ``step`` of a folder."""
    for index, path in enumerate(frame_files(folder)):
        if index % step == 0:
            yield cv2.imread(str(path), cv2.IMREAD_COLOR), path


def _video_frames(source: Path, step: int) -> Iterator[Tuple[np.ndarray, str]]:
    """``(frame, its name)`` for one decoded frame in ``step`` of a video file. A video that
    stops before the frame count it announces is reported (its end is missing); one without
    a single readable frame is an error. Stopping early (``max_frames``) closes the file."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(
            f"OpenCV cannot open video {source}: unknown container or codec; "
            "convert it (e.g. to H.264 mp4) or extract its frames into a folder"
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
