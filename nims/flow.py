"""Optical flow fields: checks, file I/O, resizing and colour coding.

Flow fields are ``(H, W, 2)`` float32 arrays in pixels of their own resolution (channel 0 = u,
horizontal; channel 1 = v, vertical), the layout OpenCV uses. Images given to the backends are
``(H, W, 3)`` uint8 BGR (as ``cv2.imread`` returns them) or ``(H, W)`` uint8 grayscale.

The estimators are in :mod:`nims.flow_backends`. ``precomputed`` flows (a folder of ``.flo``
files per sequence) are read with :func:`load_precomputed_flow`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    """Validate a flow field and return it as contiguous float32.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Displacements in pixels.
    name : str
        What to call the field in error messages (a file name, a config key).

    Raises
    ------
    ValueError
        If the shape is not ``(H, W, 2)`` with ``H, W >= 1`` or any value is NaN or infinite.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(
            f"{name}: expected a flow field of shape (H, W, 2) in pixels, got shape {flow.shape}"
        )
    if not np.issubdtype(flow.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric flow field, got dtype {flow.dtype}")
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    finite = np.isfinite(flow)
    if not finite.all():
        bad = np.argwhere(~finite.all(axis=2))
        raise ValueError(
            f"{name}: {len(bad)} pixel(s) hold NaN or infinite flow (first at row {bad[0][0]}, "
            f"column {bad[0][1]}); fix or re-estimate the flow (e.g. replace occluded pixels)"
        )
    return flow


FLO_TAG = 202021.25  # the float32 that opens every Middlebury .flo file ("PIEH")


def _check_flo_header(path: Path) -> None:
    """Refuse a ``.flo`` whose header does not match its length (a truncated file, or a header
    claiming a size that would make the reader allocate gigabytes)."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) < 12:
        raise ValueError(f"{path} is not a readable Middlebury .flo file (no 12-byte header)")
    tag = np.frombuffer(header[:4], "<f4")[0]
    width, height = (int(v) for v in np.frombuffer(header[4:], "<i4"))
    expected = 12 + 8 * width * height
    if tag != FLO_TAG or width <= 0 or height <= 0 or path.stat().st_size != expected:
        raise ValueError(
            f"{path} is not a readable Middlebury .flo file: its header says "
            f"{width}x{height} ({expected} bytes) but the file has "
            f"{path.stat().st_size} bytes, or the tag is wrong; re-create it"
        )


def read_flow(path) -> np.ndarray:
    """Read a Middlebury ``.flo`` or a numpy ``.npy`` flow file as ``(H, W, 2)`` float32 pixels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    if path.suffix == ".flo":
        _check_flo_header(path)
        flow = cv2.readOpticalFlow(str(path))
        if flow is None:
            raise ValueError(
                f"{path} is not a readable Middlebury .flo file (bad tag or truncated)"
            )
    elif path.suffix == ".npy":
        flow = np.load(path, allow_pickle=False)
    else:
        raise ValueError(f"{path}: unknown flow file type {path.suffix!r}; use .flo or .npy")
    return check_flow(flow, name=str(path))


def write_flow(path, flow: np.ndarray) -> Path:
    """Write a ``(H, W, 2)`` flow field as Middlebury ``.flo`` or ``.npy`` (by the suffix)."""
    path = Path(path)
    flow = check_flow(flow, name=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".flo":
        if not cv2.writeOpticalFlow(str(path), flow):
            raise OSError(f"could not write flow file {path}")
    elif path.suffix == ".npy":
        np.save(path, flow)
    else:
        raise ValueError(f"{path}: unknown flow file type {path.suffix!r}; use .flo or .npy")
    return path


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to ``size = (height, width)`` and rescale its vectors to match.

    A displacement of ``u`` pixels at width ``W`` is ``u * W' / W`` pixels at width ``W'``
    (likewise ``v`` with the heights): resizing the grid alone would leave vectors in the units
    of the old resolution.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels at resolution ``H x W``.
    size : (int, int)
        Target ``(height, width)``.

    Returns
    -------
    array, shape (height, width, 2)
        Flow in pixels at the target resolution (bilinear interpolation; area averaging when
        shrinking).
    """
    flow = check_flow(flow)
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"resize_flow: target size must be positive, got {size}")
    old_height, old_width = flow.shape[:2]
    if (height, width) == (old_height, old_width):
        return flow.copy()
    shrinking = height * width < old_height * old_width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(flow, (width, height), interpolation=interpolation)
    resized = resized.reshape(height, width, 2)
    resized[..., 0] *= width / old_width
    resized[..., 1] *= height / old_height
    return resized


def _make_colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al. 2007): 55 RGB colours, shape (55, 3)."""
    segments = [(15, 0, 1), (6, 1, 0), (4, 1, 2), (11, 2, 1), (13, 2, 0), (6, 0, 2)]
    # Each segment ramps one channel while another is held at 255: (length, held, ramped),
    # alternating rising and falling ramps as in the reference implementation.
    wheel = np.zeros((sum(s[0] for s in segments), 3))
    start = 0
    for index, (length, held, ramped) in enumerate(segments):
        ramp = np.floor(255 * np.arange(length) / length)
        block = wheel[start : start + length]
        block[:, held] = 255
        block[:, ramped] = ramp if index % 2 == 0 else 255 - ramp
        start += length
    return wheel


_COLOUR_WHEEL = _make_colour_wheel()


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code a flow field with the standard Middlebury wheel (hue = direction).

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    max_magnitude : float, optional
        Magnitude (pixels) mapped to full saturation; defaults to the field's largest magnitude.

    Returns
    -------
    array, shape (H, W, 3), uint8 RGB
        White for zero motion, saturated colours for ``max_magnitude``.
    """
    flow = check_flow(flow)
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    magnitude = np.hypot(u, v)
    scale = float(magnitude.max()) if max_magnitude is None else float(max_magnitude)
    if scale <= 0:
        return np.full(flow.shape[:2] + (3,), 255, dtype=np.uint8)
    u, v, radius = u / scale, v / scale, magnitude / scale
    n_colours = len(_COLOUR_WHEEL)
    angle = np.arctan2(-v, -u) / np.pi
    position = (angle + 1) / 2 * (n_colours - 1)
    index0 = np.floor(position).astype(np.int64)
    index1 = (index0 + 1) % n_colours
    fraction = (position - index0)[..., None]
    colour = ((1 - fraction) * _COLOUR_WHEEL[index0] + fraction * _COLOUR_WHEEL[index1]) / 255
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)
    return np.floor(255 * colour).astype(np.uint8)


def load_precomputed_flow(root, sequence: str, index: int) -> np.ndarray:
    """Read the precomputed forward flow of frame ``index`` -> ``index + 1`` of a sequence.

    The layout is the one the paper's authors distribute: ``<root>/<sequence>/NNNNN.flo``
    (``.npy`` accepted too), ``NNNNN`` the zero-padded index of the first frame of the pair.
    """
    folder = Path(root) / sequence
    for suffix in (".flo", ".npy"):
        path = folder / f"{index:05d}{suffix}"
        if path.is_file():
            return read_flow(path)
    raise FileNotFoundError(
        f"no precomputed flow for {sequence} frame {index}: expected {folder / f'{index:05d}.flo'} "
        "(set flow.root to the folder holding one sub-folder of .flo files per sequence)"
    )
