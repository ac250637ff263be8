"""The task datasets: synthetic crowd and independent-motion videos, generated once and cached.

``dataset=crowd_synth`` (:mod:`nims.synthetic.crowd`) and ``dataset=independent_synth``
(:mod:`nims.synthetic.independent`) are rendered by :mod:`nims.synthetic.render`;
``dataset=crowd_sprites`` is drawn by :mod:`nims.synthetic.sprites`. A set is written once
under ``<cache_dir>/<name>-<key>/`` where ``key`` hashes the generator version, the dataset
config and, for ``flow_source=estimated|mixed``, the flow backend's config: a set made with other
parameters or another flow is never reused silently. Each video folder holds ``frames.npy``
(T+1, H, W, 3) uint8 BGR, ``flows.npy`` (T, H, W, 2) float16 pixels, ``masks.npy`` (T, H, W)
bool (the salient objects' visible pixels), ``others.npy`` (the other objects': walkers of the
crowd, near static objects) and ``labels.npy`` (T,) uint8; ``manifest.json`` records the key, the
config, the counts and the video splits. A set is rendered under a lock (``<name>-<key>.lock``:
processes asking for it meanwhile wait) into ``.<name>-<key>.partial/`` and renamed when whole.
The set is read for training and evaluation through :mod:`nims.synthetic.frames`.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from omegaconf import OmegaConf

from nims.flow_backends import make_flow_estimator
from nims.report import bars_off, read_json
from nims.synthetic.boxes import BoxesConfig, boxes_video
from nims.synthetic.crowd import CrowdConfig, crowd_video
from nims.synthetic.independent import IndependentConfig, independent_video
from nims.synthetic.sprites import SpritesConfig, sprite_crowd_video
from nims.synthetic.videos import finish_video, traced

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


GENERATOR_VERSION = 3  # bump whenever a generator changes what it draws or stores
# Each generator draws one video: frames, exact flows, salient and other masks.
GENERATORS = {
    "crowd_synth": (CrowdConfig, traced(crowd_video)),
    "independent_synth": (IndependentConfig, traced(independent_video)),
    # Independent motion where a near static object has the strongest flow.
    "parallax_synth": (IndependentConfig, traced(independent_video)),
    # Parallax drawn by other code (boxes on a street): the parallax claim's held-out check.
    "parallax_boxes": (BoxesConfig, boxes_video),
    # Crowds drawn by other code (flat sprites): the crowd model's generalisation check.
    "crowd_sprites": (SpritesConfig, sprite_crowd_video),
}


def generator_config(dataset_cfg):
    """The generator's dataclass filled from the ``dataset`` config node.

    A value takes the type of the field's default (``[5, 5]`` for a float range is
    ``(5.0, 5.0)``), so that the same set gets the same cache key however it is written.
    """
    config_class, _ = GENERATORS[dataset_cfg.name]
    values = {}
    for item in fields(config_class):
        if item.name in dataset_cfg and dataset_cfg[item.name] is not None:
            value = (
                OmegaConf.to_object(dataset_cfg[item.name])
                if OmegaConf.is_config(dataset_cfg[item.name])
                else dataset_cfg[item.name]
            )
            values[item.name] = _like(item.default, value)
            _check_field(dataset_cfg.name, item.name, item.default, values[item.name])
    return config_class(**values)


def _check_field(dataset: str, name: str, default, value) -> None:
    """Refuse a generator setting that cannot make a set, naming ``dataset.<name>``: counts and
    sizes below one, and ranges ``[low, high]`` given high first."""
    key = f"dataset.{name}"
    if name in ("videos", "frames", "size"):
        numbers = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in numbers):
            raise ValueError(
                f"{key}={list(numbers) if name == 'size' else value} (dataset={dataset}): "
                f"give {'[height, width] in pixels' if name == 'size' else 'a count'}, "
                "integers >= 1"
            )
    elif (
        isinstance(default, tuple)
        and len(default) == 2
        and all(isinstance(d, (int, float)) for d in default)
    ):
        if len(value) != 2 or not value[0] <= value[1]:
            raise ValueError(
                f"{key}={list(value)} (dataset={dataset}) is a range [low, high]: give two "
                "numbers, the lower first"
            )


def _like(default, value):
    """``value`` (a list from the config, or a scalar) cast like ``default``."""
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        if len(default) == len(value):
            return tuple(_like(d, v) for d, v in zip(default, value, strict=True))
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _key_fields(config) -> dict:
    """The generator's settings a set's key holds: all, except a field added after sets were
    cached (the generator's ``ADDED_FIELDS``) left at its default, which draws those sets again."""
    values = asdict(config)
    defaults = {item.name: item.default for item in fields(config)}
    for name in getattr(config, "ADDED_FIELDS", ()):
        if values[name] == defaults[name]:
            del values[name]
    return values


def set_key(dataset_cfg, flow_cfg) -> str:
    """Hash of everything the set's content depends on."""
    description = {
        "version": GENERATOR_VERSION,
        "name": dataset_cfg.name,
        "generator": _key_fields(generator_config(dataset_cfg)),
        "videos": int(dataset_cfg.videos),
        "seed": int(dataset_cfg.seed),
        "flow_source": dataset_cfg.flow_source,
    }
    if dataset_cfg.flow_source in ("estimated", "mixed"):
        description["flow"] = OmegaConf.to_container(flow_cfg, resolve=True)
    elif dataset_cfg.flow_source != "analytic":
        raise ValueError(
            f"dataset.flow_source must be 'estimated', 'analytic' or 'mixed', got "
            f"{dataset_cfg.flow_source!r}"
        )
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def video_is_salient(seed: int, video: int, fraction: float) -> bool:
    return bool(np.random.default_rng([seed, video, 7]).random() < fraction)


def video_flow_is_estimated(seed: int, video: int, flow_source: str) -> bool:
    """Whether a video's stored flow is estimated from its frames (``flow_source=estimated``;
    ``mixed``: every other video on average, by a coin of its own) or exact (``analytic``)."""
    if flow_source == "mixed":
        return bool(np.random.default_rng([seed, video, 13]).random() < 0.5)
    return flow_source == "estimated"


def render_workers(dataset_cfg) -> int:
    """The processes ``dataset.workers`` asks for (0: one per core; one when the key is absent)."""
    workers = dataset_cfg.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(
            f"dataset.workers must be 0 (one process per core) or a count >= 1, got {workers!r}"
        )
    return workers or os.cpu_count() or 1


def split_videos(count: int, seed: int, fractions=(0.7, 0.15, 0.15)) -> dict[str, list[int]]:
    """Video indices per split, from the seed: frames of a video never cross splits."""
    if count < 3:
        raise ValueError(
            f"dataset.videos must be at least 3 (train, val and test need one "
            f"video each), got {count}"
        )
    order = np.random.default_rng([seed, 11]).permutation(count)
    val_count = max(1, int(round(fractions[1] * count)))
    train_end = max(1, min(count - 1 - val_count, int(round(fractions[0] * count))))
    val_end = train_end + val_count
    return {
        "train": sorted(order[:train_end].tolist()),
        "val": sorted(order[train_end:val_end].tolist()),
        "test": sorted(order[val_end:].tolist()),
    }


def _write_video(folder: Path, video: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in video.items():
        np.save(folder / f"{name}.npy", array)


@functools.lru_cache(maxsize=1)
def _estimator(flow_json: str):
    """One flow estimator per process and flow config (RAFT loads its weights once)."""
    return make_flow_estimator(OmegaConf.create(json.loads(flow_json)))


def _generate_video(
    folder: Path, name: str, config, flow: dict | None, flow_source: str, seed: int, video: int
) -> list[int]:
    """Render video number ``video`` of a set into ``folder``; return its frame labels."""
    salient = video_is_salient(seed, video, config.salient_fraction)
    drawn = GENERATORS[name][1](config, seed * 100003 + video, salient)
    estimator = (
        _estimator(json.dumps(flow, sort_keys=True))
        if flow is not None and video_flow_is_estimated(seed, video, flow_source)
        else None
    )
    rendered = finish_video(drawn, config.min_visible, estimator)
    _write_video(folder / f"video_{video:04d}", rendered)
    return rendered["labels"].tolist()


def build_set(dataset_cfg, flow_cfg, progress: bool = True) -> Path:
    """Generate the set a config describes (or find it in the cache); return its folder."""
    if dataset_cfg.name not in GENERATORS:
        raise ValueError(
            f"no synthetic generator named {dataset_cfg.name!r}; available: {sorted(GENERATORS)}"
        )
    key = set_key(dataset_cfg, flow_cfg)
    folder = Path(str(dataset_cfg.cache_dir)) / f"{dataset_cfg.name}-{key}"
    if (folder / "manifest.json").is_file():
        return _checked(folder, key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One process renders a set; others asking for it meanwhile (the jobs of a sweep) wait for
    # it. The set is rendered into a private folder and renamed when complete, so a folder under
    # its final name is always whole, even after an interrupted render.
    with _exclusive(folder.parent / f"{folder.name}.lock", folder):
        if (folder / "manifest.json").is_file():
            return _checked(folder, key)
        if folder.exists():
            shutil.rmtree(folder)  # left by an interrupted render of an earlier version
        staging = folder.parent / f".{folder.name}.partial"
        if staging.exists():
            shutil.rmtree(staging)  # an interrupted render: start again
        try:
            manifest = _render(dataset_cfg, flow_cfg, key, staging, progress)
            (staging / "manifest.json").write_text(json.dumps(manifest))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(folder)
    return folder


def _checked(folder: Path, key: str) -> Path:
    """``folder``, a whole set, once its manifest is found to carry ``key`` (an error otherwise)."""
    manifest_path = folder / "manifest.json"
    manifest = read_json(manifest_path, f"delete {folder} to generate the set again")
    if manifest.get("key") != key:
        raise ValueError(
            f"{manifest_path} was written for another configuration "
            f"(key {manifest.get('key')}, expected {key}): delete {folder}"
        )
    return folder


@contextmanager
def _exclusive(lock_path: Path, folder: Path):
    """Hold an exclusive lock on ``lock_path`` (released when the process ends, however)."""
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process rendering %s", folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _render(dataset_cfg, flow_cfg, key: str, folder: Path, progress: bool) -> dict:
    """Render every video of the set into ``folder``; return its manifest."""
    from tqdm import tqdm

    config = generator_config(dataset_cfg)
    flow = (
        OmegaConf.to_container(flow_cfg, resolve=True)
        if dataset_cfg.flow_source in ("estimated", "mixed")
        else None
    )
    seed, count = int(dataset_cfg.seed), int(dataset_cfg.videos)
    workers = render_workers(dataset_cfg)
    folder.mkdir(parents=True)
    videos = tqdm(range(count), desc=f"generating {dataset_cfg.name}", disable=bars_off(progress))
    # Each video has its own seed, so the set does not depend on how many workers render it.
    labels = Parallel(n_jobs=workers, max_nbytes=None)(
        delayed(_generate_video)(
            folder, dataset_cfg.name, config, flow, str(dataset_cfg.flow_source), seed, video
        )
        for video in videos
    )
    return {
        "key": key,
        "name": dataset_cfg.name,
        "config": asdict(config),
        "flow_source": dataset_cfg.flow_source,
        "videos": count,
        "frames_per_video": config.frames,
        "size": list(config.size),
        "labels": labels,
        "splits": split_videos(count, seed),
        "salient_frames": int(sum(map(sum, labels))),
        "frames": int(sum(map(len, labels))),
    }
