"""A sweep's summary: every job's ``summary.json`` of a multirun folder gathered into
``sweep.csv``, ``sweep.md`` and ``sweep.png``, by the Hydra callback :class:`SweepSummary` at the
end of the multirun or by ``python -m nims.sweep <sweep folder>``."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from nims.atomic import replaced_atomically
from nims.report import SUMMARY_COLUMNS, atomic_write_text, markdown_table, write_csv


def collect_sweep(sweep: Path) -> list[dict[str, object]]:
    """One row per job folder of a multirun: its overrides and its ``summary.json``.

    Jobs that failed or have not finished (no summary, or only the stale one of an earlier job
    in a reused sweep folder) get a row with ``status`` saying so, so a partial sweep still
    reports what it has; a job whose ``failures.json`` names sequences
    is ``incomplete``, with their names (its means cover the other sequences only).
    """
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep} does not exist")
    rows = []
    jobs = _job_folders(sweep)
    if not jobs:
        raise FileNotFoundError(
            f"{sweep} holds no job folder (0/, 1/, ...): is it a multirun sweep folder?"
        )
    for job in jobs:
        overrides_file = job / ".hydra" / "overrides.yaml"
        row: dict[str, object] = {"job": int(job.name), **_job_overrides(job)}
        summary_file = job / "summary.json"
        failures_file = job / "failures.json"
        failed = json.loads(failures_file.read_text()) if failures_file.is_file() else {}
        if summary_file.is_file() and _older(summary_file, overrides_file):
            # Hydra wrote this job's overrides after the summary: the summary is an earlier
            # job's in a reused sweep folder, and this job failed or has not finished.
            row["status"] = "stale summary of an earlier job (this job failed or is unfinished)"
        elif summary_file.is_file():
            row.update(json.loads(summary_file.read_text()))
            # A job that lost sequences averages over the survivors: not comparable.
            row["status"] = f"incomplete: failed {', '.join(sorted(failed))}" if failed else "done"
        else:
            row["status"] = "no summary (failed or unfinished)"
        rows.append(row)
    return rows


def _job_folders(sweep: Path) -> list[Path]:
    """The job folders ``0/, 1/, ...`` of a multirun folder, in job order."""
    if not sweep.is_dir():
        return []
    return sorted(
        (p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )


def _job_overrides(job: Path) -> dict[str, str]:
    """``{key: value}`` of a job's command-line overrides (Hydra's ``overrides.yaml``)."""
    overrides_file = job / ".hydra" / "overrides.yaml"
    overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
    pairs = (str(override).partition("=") for override in overrides)
    return {key.lstrip("+~"): value for key, _, value in pairs}


def _older(path: Path, than: Path) -> bool:
    """Whether ``path`` was last written before ``than`` (False when ``than`` is absent)."""
    return than.is_file() and path.stat().st_mtime_ns < than.stat().st_mtime_ns


def plot_sweep(rows: list[dict[str, object]], path: Path) -> Path | None:
    """J and F means against the one swept value that varies (if there is one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in rows if row.get("status") == "done"]
    varying = [
        key
        for key in (done[0] if done else {})
        if key not in ("job", "status")
        and key not in SUMMARY_COLUMNS
        and isinstance(done[0][key], str)
        and len({str(r.get(key)) for r in done}) > 1
    ]
    measures = [m for m in ("J_mean", "F_mean", "J&F") if done and m in done[0]]
    if not done or not varying or not measures:
        return None  # nothing swept, or nothing scored (e.g. videos without ground truth)
    key = varying[0]
    try:
        done.sort(key=lambda r: float(r[key]))
        positions = [float(r[key]) for r in done]
    except ValueError:
        positions = list(range(len(done)))
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for measure in measures:
        axis.plot(positions, [r[measure] for r in done], marker="o", label=measure)
    axis.set_xlabel(key)
    axis.set_ylabel("score")
    # Two short lines: the sweep folder's name (a timestamp) would push one line off the figure.
    axis.set_title(f"{', '.join(measures)} against {key}\n{Path(path).parent.name}", fontsize=8)
    if positions != list(range(len(done))):
        axis.set_xticks(positions)
    else:
        axis.set_xticks(positions, [str(r[key]) for r in done])
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with replaced_atomically(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=120)
    plt.close(figure)
    return path


def write_sweep_summary(sweep: Path) -> str:
    """``sweep.csv``, ``sweep.md`` and ``sweep.png`` in a multirun folder, from every job's
    summary; the overrides every job shares are left out of the tables (they are in each job's
    ``config.yaml``). Returns the Markdown table."""
    sweep = Path(sweep)
    rows = collect_sweep(sweep)
    overrides = {key for job in _job_folders(sweep) for key in _job_overrides(job)}
    constant = {
        key
        for key in overrides
        if len({str(row[key]) for row in rows if key in row}) <= 1 and len(rows) > 1
    }
    rows = [{k: v for k, v in row.items() if k not in constant} for row in rows]
    write_csv(sweep / "sweep.csv", rows)
    table = markdown_table(rows, list(dict.fromkeys(key for row in rows for key in row)))
    atomic_write_text(sweep / "sweep.md", table)
    plot_sweep(rows, sweep / "sweep.png")
    return table


class SweepSummary(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): at the end of a multirun, the sweep's
    summary (:func:`write_sweep_summary`) is written and printed, without a second command."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        if not any((job / "summary.json").is_file() for job in _job_folders(sweep)):
            return  # jobs that write no summary (train.py, generate.py)
        print(write_sweep_summary(sweep))
        print(f"sweep summary: {sweep / 'sweep.md'}, sweep.csv, sweep.png", flush=True)


def main(argv=None) -> None:
    """``python -m nims.sweep <sweep dir>``: sweep.csv, sweep.md and sweep.png in the folder
    (a multirun writes them itself when it ends; this rewrites them, e.g. after a resume)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sweep", type=Path, help="the multirun folder (holding 0/, 1/, ...)")
    arguments = parser.parse_args(argv)
    print(write_sweep_summary(arguments.sweep))
    if (arguments.sweep / "sweep.png").is_file():
        print(f"plot: {arguments.sweep / 'sweep.png'}")


if __name__ == "__main__":
    main()
