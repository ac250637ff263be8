"""Optical flow of a sequence, computed once per (dataset, sequence, backend, parameters).

Flows are stored as Middlebury ``.flo`` under
``<cache_dir>/flows/<dataset>/<backend>-<key>/<sequence>/NNNNN.flo`` (flow of frame NNNNN ->
NNNNN+1), ``key`` hashing the backend's whole config; ``meta.json`` beside them records that
config and the frame size. A second run reads them; a cache written by another backend or
parameters lives in another folder, and one of another frame size is refused, so nothing is
reused silently. ``flow=precomputed`` reads the user's own folder in the same layout.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List, Sequence

import numpy as np
from omegaconf import OmegaConf

from nims.flow import load_precomputed_flow, make_flow_estimator, read_flow, write_flow


def backend_key(flow_cfg) -> str:
    config = OmegaConf.to_container(flow_cfg, resolve=True) if OmegaConf.is_config(flow_cfg) \
        else dict(flow_cfg)
    text = json.dumps(config, sort_keys=True)
    return f"{config['name']}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def sequence_flows(frames: Sequence[np.ndarray], flow_cfg, cache_dir, dataset: str,
                   sequence: str) -> List[np.ndarray]:
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
    """
    count = len(frames) - 1
    if count < 1:
        raise ValueError(f"sequence {sequence!r} has {len(frames)} frame(s): flow needs two")
    if flow_cfg["name"] == "precomputed":
        return [load_precomputed_flow(flow_cfg["root"], sequence, index) for index in
                range(count)]
    estimator = make_flow_estimator(flow_cfg)
    if cache_dir is None:
        return [estimator(frames[i], frames[i + 1]) for i in range(count)]
    folder = Path(str(cache_dir)) / "flows" / dataset / backend_key(flow_cfg) / sequence
    folder.mkdir(parents=True, exist_ok=True)
    size = list(frames[0].shape[:2])
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["size"] != size:
            raise ValueError(f"flow cache {folder} holds flows of {meta['size']} frames, this "
                             f"sequence has {size}: delete the folder or use another cache_dir")
    else:
        config = OmegaConf.to_container(flow_cfg, resolve=True) if OmegaConf.is_config(
            flow_cfg) else dict(flow_cfg)
        meta_path.write_text(json.dumps({"flow": config, "size": size}))
    flows = []
    for index in range(count):
        path = folder / f"{index:05d}.flo"
        if path.is_file():
            flows.append(read_flow(path))
        else:
            flow = estimator(frames[index], frames[index + 1])
            write_flow(path, flow)
            flows.append(flow)
    return flows
