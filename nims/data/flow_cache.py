"""Optical flow of a sequence, computed once per (dataset, sequence, backend, parameters).

Flows are stored as Middlebury ``.flo`` under
``<cache_dir>/flows/<dataset>/<backend>-<key>/<sequence>-<frames>/NNNNN.flo`` (flow of frame
NNNNN -> NNNNN+1), ``key`` hashing the backend's whole config and ``frames`` the frames'
identity (:func:`frames_identity`: the bytes of their files, or their pixels); ``meta.json``
beside them records the config and the frame size. A second run reads them, as does a run on a
copy of the same frames elsewhere; another backend, other parameters or other frames under the
same sequence name land in another folder, and a cache of another frame size is refused, so
nothing is reused silently. Each file is written to a temporary name and renamed: an interrupted run
leaves no truncated ``.flo``. ``flow=precomputed`` reads the user's own folder in the same layout.

``store="quantized"`` (``paths.flow_format``) keeps each flow instead as ``NNNNN.npz``: the
vectors rounded to 1/1024 pixel (an error of at most 0.0005 px) as compressed integers, about
half the size of a ``.flo``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from nims.atomic import replaced_atomically
from nims.flow import load_precomputed_flow, read_flow, write_flow
from nims.flow_backends import make_flow_estimator
from nims.report import atomic_write_text, bars_off, read_json
from nims.resume import contents_identity

FLOW_FORMATS = ("flo", "quantized")
QUANTUM = 1 / 1024  # pixels: the step of a quantized cached flow (a power of two: exact in float32)


def backend_key(flow_cfg) -> str:
    config = (
        OmegaConf.to_container(flow_cfg, resolve=True)
        if OmegaConf.is_config(flow_cfg)
        else dict(flow_cfg)
    )
    text = json.dumps(config, sort_keys=True)
    return f"{config['name']}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def frames_identity(frames: Sequence[np.ndarray]) -> str:
    """A short hash that changes when the frames do.

    Frames read from files (an object with ``paths``, e.g. :class:`nims.data.davis.FrameSequence`)
    are identified by their files' bytes (:func:`nims.resume.contents_identity`: a replaced
    frame changes it, a copied or re-synced folder does not); frames in memory by their pixels.
    """
    paths = getattr(frames, "paths", None)
    if paths is not None:
        return contents_identity(paths)
    digest = hashlib.sha1()
    for frame in frames:
        frame = np.ascontiguousarray(frame)
        digest.update(f"{frame.shape}{frame.dtype}".encode())
        digest.update(frame.tobytes())
    return digest.hexdigest()[:12]


def sequence_flows(
    frames: Sequence[np.ndarray],
    flow_cfg,
    cache_dir,
    dataset: str,
    sequence: str,
    progress: str | None = None,
    store: str = "flo",
) -> list[np.ndarray]:
    """Forward flows ``(H, W, 2)`` of consecutive frames: ``len(frames) - 1`` fields.

    Parameters
    ----------
    frames : sequence of (H, W, 3) uint8 BGR
        The sequence's frames (they are only read when a flow must be computed).
    flow_cfg : mapping
        The ``flow`` config node.
    cache_dir : path or None
        Cache root; None computes without caching.
    dataset, sequence : str
        Names that place the sequence in the cache.
    progress : str, optional
        Label of a progress bar over the frames (none when None).
    store : {"flo", "quantized"}
        How the cache keeps a flow: float32 ``.flo``, or quantized to 1/1024 px (module
        docstring).
    """
    from tqdm import tqdm

    count = len(frames) - 1
    if count < 1:
        raise ValueError(f"sequence {sequence!r} has {len(frames)} frame(s): flow needs two")
    if flow_cfg["name"] == "precomputed":
        return [load_precomputed_flow(flow_cfg["root"], sequence, index) for index in range(count)]
    estimator = make_flow_estimator(flow_cfg)
    if cache_dir is None:
        return [estimator(frames[i], frames[i + 1]) for i in range(count)]
    if store not in FLOW_FORMATS:
        raise ValueError(f"paths.flow_format must be one of {FLOW_FORMATS}, got {store!r}")
    suffix = ".flo" if store == "flo" else ".npz"
    size = list(frames[0].shape[:2])
    folder = _cache_folder(
        Path(str(cache_dir)) / "flows" / dataset / backend_key(flow_cfg),
        f"{sequence}-{frames_identity(frames)}",
        flow_cfg,
        size,
    )
    flows = []
    for index in tqdm(
        range(count),
        desc=progress,
        unit="frame",
        leave=False,
        disable=bars_off(progress is not None),
    ):
        path = folder / f"{index:05d}{suffix}"
        if path.is_file():
            flows.append(_read_cached(path, folder))
        else:
            flow = estimator(frames[index], _next_frame(frames, index, size, sequence))
            with replaced_atomically(path, suffix=suffix) as temporary:
                if store == "flo":
                    write_flow(temporary, flow)
                else:
                    steps = quantized(flow)
                    np.savez_compressed(temporary, steps=steps)
                    flow = dequantized(steps)  # what a later run reads back
            flows.append(flow)
    return flows


def _cache_folder(backend_folder: Path, name: str, flow_cfg, size: list[int]) -> Path:
    """The sequence's cache folder, created with its ``meta.json`` (backend, frame size), or
    checked against the one there."""
    folder = backend_folder / name
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = read_json(meta_path, f"delete {folder} to compute its flows again")
        if meta["size"] != size:
            raise ValueError(
                f"flow cache {folder} holds flows of {meta['size']} frames, this "
                f"sequence has {size}: delete the folder or use another cache_dir"
            )
    else:
        config = (
            OmegaConf.to_container(flow_cfg, resolve=True)
            if OmegaConf.is_config(flow_cfg)
            else dict(flow_cfg)
        )
        atomic_write_text(meta_path, json.dumps({"flow": config, "size": size}))
    return folder


def quantized(flow: np.ndarray) -> np.ndarray:
    """A flow ``(H, W, 2)`` in pixels as int32 steps of :data:`QUANTUM`."""
    return np.round(np.asarray(flow, dtype=np.float64) / QUANTUM).astype(np.int32)


def dequantized(steps: np.ndarray) -> np.ndarray:
    """The float32 flow, in pixels, of :func:`quantized` steps."""
    return steps.astype(np.float32) * np.float32(QUANTUM)


def _read_cached(path: Path, folder: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path) as stored:
                return dequantized(stored["steps"])
        return read_flow(path)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"cached flow {path} is unreadable ({error}): delete it (or "
            f"{folder}) to compute it again"
        ) from error


def _next_frame(
    frames: Sequence[np.ndarray], index: int, size: list[int], sequence: str
) -> np.ndarray:
    """Frame ``index + 1``, refused when its size is not the first frame's, ``size``."""
    following = frames[index + 1]
    if list(following.shape[:2]) != size:
        paths = getattr(frames, "paths", None)
        name = paths[index + 1] if paths is not None else f"frame {index + 1}"
        raise ValueError(
            f"sequence {sequence!r}: {name} is {following.shape[1]}x"
            f"{following.shape[0]}, its first frame {size[1]}x{size[0]}: "
            "every frame of a sequence must have one size"
        )
    return following
