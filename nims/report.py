"""Run outputs: the run folder, JSON / CSV / Markdown writers, the summary table."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra output folder of the running job (created if needed)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise RuntimeError(
            "no Hydra run folder: call through the entry point, or set the Hydra config "
            "(HydraConfig.instance().set_config(cfg)) as the tests do")
    path = Path(HydraConfig.get().runtime.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_resolved_config(cfg: DictConfig, folder: Path) -> Path:
    """Save the fully resolved config (without Hydra's own node) as ``config.yaml``."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    path = folder / "config.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    return path


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Write dict rows as CSV; the columns are the union of the rows' keys, in first-seen order."""
    columns: List[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


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


def write_summary(folder: Path, summary: Dict[str, float], title: str) -> str:
    """Write ``summary.json`` and ``summary.md`` (the DAVIS table) and return the Markdown."""
    write_json(folder / "summary.json", summary)
    table = f"# {title}\n\n" + markdown_table([summary], [c for c in SUMMARY_COLUMNS
                                                          if c in summary])
    (folder / "summary.md").write_text(table)
    return table
