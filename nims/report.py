"""Run outputs: the run folder, JSON / CSV / Markdown writers, the summary table."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nims.atomic import replaced_atomically


def run_dir(cfg: DictConfig) -> Path:
    """The output folder of the running job (created if needed): the config's own
    ``hydra.runtime.output_dir`` when it carries one (a config composed inside another run),
    else the running Hydra job's."""
    from hydra.core.hydra_config import HydraConfig

    own = OmegaConf.select(cfg, "hydra.runtime.output_dir", default=None)
    if not own and not HydraConfig.initialized():
        raise RuntimeError(
            "no Hydra run folder: call through the entry point, or set the Hydra config "
            "(HydraConfig.instance().set_config(cfg)) as the tests do"
        )
    path = Path(own or HydraConfig.get().runtime.output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the run folder {path} ({error.strerror}): set "
            "hydra.run.dir=<a writable folder>"
        ) from error
    if not os.access(path, os.W_OK):
        raise OSError(
            f"the run folder {path} is not writable: set hydra.run.dir=<a writable folder>"
        )
    return path


def announce_sweep_folder() -> None:
    """In a multirun job, print the sweep folder and how to gather its jobs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        sweep = HydraConfig.get().sweep.dir
        print(f"sweep folder: {sweep} (python -m nims.sweep {sweep} gathers its jobs)", flush=True)


def announce_run_folder(
    run: Callable | None = None, *, folder_of: Callable[[DictConfig], Path] | None = None
) -> Callable:
    """Decorate an entry point's ``run(cfg)`` so that it prints its run folder first and,
    whatever happens, last: a researcher never has to look for the outputs. ``folder_of``
    (default :func:`run_dir`) says where the run writes, for ``@announce_run_folder(
    folder_of=...)``."""
    if run is None:
        return functools.partial(announce_run_folder, folder_of=folder_of)

    @functools.wraps(run)
    def announced(cfg: DictConfig):
        folder = (folder_of or run_dir)(cfg)
        announce_sweep_folder()
        print(f"run folder: {folder}", flush=True)
        try:
            result = run(cfg)
        except BaseException:
            print(f"run failed: {folder} holds only what was written before the error", flush=True)
            raise
        print(f"results in {folder}", flush=True)
        return result

    return announced


def main_of(run: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """The body of an entry point's ``@hydra.main``: ``run(cfg)``, and an error printed as one
    line (its type and message, which name the key or file) with exit status 1, instead of a
    traceback; ``HYDRA_FULL_ERROR=1`` shows the whole traceback."""

    @functools.wraps(run)
    def main(cfg: DictConfig):
        try:
            return run(cfg)
        except Exception as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(
                f"error: {type(error).__name__}: {error}\n(HYDRA_FULL_ERROR=1 shows the traceback)",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1) from None

    return main


def bars_off(enabled: bool) -> bool | None:
    """tqdm's ``disable`` for a progress bar: True when ``progress`` turns bars off, else None,
    which tqdm reads as "off when stderr is not a terminal": a redirected stderr (a log file, a
    job scheduler) gets the run's messages, not thousands of carriage-return updates."""
    return True if not enabled else None


def resolved_config(cfg: DictConfig) -> dict:
    """The config as a plain dict, interpolations resolved, without Hydra's own node."""
    return OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True
    )


def command_line_keys(group: str) -> list[str]:
    """The keys under ``group`` that the running job's command line sets (``group.key=...``,
    ``+group.key=...``), without the ``group.`` prefix; none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    keys = []
    for override in HydraConfig.get().overrides.task:
        key = str(override).split("=", 1)[0].lstrip("+~")
        if key.startswith(group + "."):
            keys.append(key[len(group) + 1 :])
    return keys


def require_positive_ints(cfg: DictConfig, keys: Sequence[str]) -> None:
    """Refuse a run whose count settings (``batch_size``, ``threads``...) are not integers
    >= 1, naming the key, before any work starts."""
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: an
    interrupted write leaves the old file or none, never half of one."""
    with replaced_atomically(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def refuse_reused_folder(folder: Path) -> None:
    """Refuse to start a run in a folder that already holds one (its ``config.yaml``): the
    new run would overwrite the old run's config and mix its results with the old ones.

    Raises
    ------
    FileExistsError
        Naming the folder and the ways on: a new folder, or ``resume`` where the entry point
        has one.
    """
    if (folder / "config.yaml").is_file():
        raise FileExistsError(
            f"run folder {folder} already holds a run (config.yaml): choose another "
            "hydra.run.dir (or hydra.sweep.dir), or continue that run with resume=true "
            "and its settings; nothing was written"
        )


def write_resolved_config(cfg: DictConfig, folder: Path, continuing: bool = False) -> Path:
    """Save the fully resolved config (without Hydra's own node) as ``config.yaml``. Unless the
    run is ``continuing`` an earlier one (a resume, whose config was checked), a folder that
    already holds a run is refused (:func:`refuse_reused_folder`)."""
    if not continuing:
        refuse_reused_folder(folder)
    return atomic_write_text(
        folder / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved_config(cfg)))
    )


def _json_safe(data):
    """``data`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(value) for value in data]
    return data


def read_json(path: Path, remedy: str):
    """The JSON in ``path``; a damaged file is an error naming it and ``remedy`` (what to do)."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError as error:
        raise ValueError(f"{path} is damaged (not valid JSON: {error}): {remedy}") from error


def write_json(path: Path, data) -> Path:
    """Write ``data`` as strict JSON (NaN written as null), atomically."""
    return atomic_write_text(
        path, json.dumps(_json_safe(data), indent=2, sort_keys=False, allow_nan=False) + "\n"
    )


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Write dict rows as CSV; the columns are the union of the rows' keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Iterable[str] = None) -> str:
    """A GitHub-flavoured Markdown table of dict rows (floats with 3 decimals)."""
    columns = list(columns) if columns is not None else list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines) + "\n"


SUMMARY_COLUMNS = ["J&F", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay"]


def write_summary(folder: Path, summary: dict[str, float], title: str) -> str:
    """Write ``summary.json`` and ``summary.md`` (the DAVIS table) and return the Markdown."""
    write_json(folder / "summary.json", summary)
    table = f"# {title}\n\n" + markdown_table(
        [summary], [c for c in SUMMARY_COLUMNS if c in summary]
    )
    atomic_write_text(folder / "summary.md", table)
    return table
