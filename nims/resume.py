"""What a resumed evaluation may reuse: a sequence's saved score counts only when the settings
that compute it, the checkpoint's content and the sequence's files are those of the run now.

The run's identity (:func:`run_identity`) hashes every setting except the execution-only ones
(:data:`RESUME_FREE_KEYS`) and the checkpoint file's bytes; a sequence's identity adds the
path, size and modification time of each of its input files (:func:`files_identity`). Both are
stored in the sequence's score file; a resume recomputes any sequence whose identity differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# Keys that change how a run is carried out, not what it computes: a resume may change them.
RESUME_FREE_KEYS = (
    "resume",
    "sequence_workers",
    "threads",
    "progress",
    "figures",
    "report_frames",
    "batch_size",
    "device",
    "logger",
    "paths",
    "dataset.sequences",
)

# Settings that name a file or folder.
PATH_KEYS = (
    "dataset.root",
    "dataset.cache_dir",
    "dataset.input",
    "checkpoint",
    "predictions",
    "init_from",
)


def _flatten(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def computing_settings(
    config: dict, free_keys: Sequence[str] = RESUME_FREE_KEYS
) -> dict[str, object]:
    """The flattened settings of a resolved config that change what a run computes: all but
    ``free_keys`` and the keys under them; paths (:data:`PATH_KEYS`) made absolute, so that
    two spellings of one folder are one setting."""
    return {
        key: str(Path(value).expanduser().resolve())
        if key in PATH_KEYS and isinstance(value, str)
        else value
        for key, value in _flatten(config).items()
        if not any(key == free or key.startswith(free + ".") for free in free_keys)
    }


def files_identity(paths: Iterable[Path]) -> str:
    """A short hash of files' resolved paths, sizes and modification times: it changes when a
    file is added, removed, replaced or read from another folder (cheap: nothing is read)."""
    digest = hashlib.sha1()
    for path in paths:
        status = Path(path).stat()
        digest.update(f"{Path(path).resolve()}|{status.st_size}|{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def contents_identity(paths: Iterable[Path]) -> str:
    """A short hash of files' bytes, in order: what a cache of results computed from them is
    keyed by. Unlike :func:`files_identity` it survives a copy, a move or a re-synced data
    folder (new modification times, same frames), so such a folder reuses its cached results
    instead of computing and storing them again; any changed byte changes it."""
    digest = hashlib.sha1()
    for path in paths:
        digest.update(hashlib.sha1(Path(path).read_bytes()).digest())
    return digest.hexdigest()[:12]


def checkpoint_identity(checkpoint: str | None) -> str | None:
    """A hash of the checkpoint file's bytes (None when there is no such file): a checkpoint
    replaced at the same path is another classifier."""
    if not checkpoint or not Path(str(checkpoint)).is_file():
        return None
    return hashlib.sha1(Path(str(checkpoint)).read_bytes()).hexdigest()[:12]


def run_identity(cfg: DictConfig) -> str:
    """The hash of what a run computes: its computing settings and its checkpoint's bytes."""
    from nims.report import resolved_config

    settings = computing_settings(resolved_config(cfg))
    text = json.dumps(settings, sort_keys=True, default=str)
    text += f"|checkpoint={checkpoint_identity(cfg.get('checkpoint'))}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def check_resume_config(cfg: DictConfig, folder: Path) -> None:
    """Refuse ``resume=true`` into a run folder whose ``config.yaml`` computes something else:
    the skipped sequences would keep the old config's results under the new config's name."""
    from nims.report import resolved_config

    saved_path = folder / "config.yaml"
    if not saved_path.is_file():
        return
    saved = computing_settings(OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True))
    differences = setting_differences(saved, computing_settings(resolved_config(cfg)))
    if differences:
        raise ValueError(
            f"resume=true into {folder}, made with another config ({differences}): use the "
            "same settings or a new run folder"
        )


def setting_differences(saved: dict[str, object], current: dict[str, object]) -> str:
    """``key: saved -> current`` for the first 8 settings that differ, '' when none do."""
    differing = sorted(
        key for key in set(saved) | set(current) if saved.get(key) != current.get(key)
    )
    shown = ", ".join(f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in differing[:8])
    return shown + (", ..." if len(differing) > 8 else "")
