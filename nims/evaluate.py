"""``python evaluate.py``: run a method on a benchmark and score it, or score saved results.

One loop (:func:`evaluate_sequences`) for every pairing: for each sequence of the benchmark
(``dataset=...``, :mod:`nims.benchmarks`), the method (``method=...``, :mod:`nims.methods`)
predicts every frame, the benchmark writes the results once and scores them in memory; the
benchmark then summarises the scores (``summary.json``, ``summary.md``, CSV tables,
``report.html``, W&B). Benchmarks: ``davis2016`` (official protocol), ``crowd_synth``,
``independent_synth``, ``parallax_synth`` (rendered task sets), ``video`` (no ground truth);
``predictions=<dir>`` scores a results folder on DAVIS with the same code. Methods: ``nims``,
``dominant_motion``, ``unet``.

Sequences run in parallel where the benchmark allows (``sequence_workers``); one that fails is
reported by name in ``failures.json`` without losing the others, and ``resume=true|<folder>``
skips sequences whose results are already written.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from nims.benchmarks import benchmark_for, figures_not_drawn
from nims.device import resolve_device
from nims.postprocess import postprocess_results
from nims.report import (
    announce_run_folder,
    bars_off,
    command_line_keys,
    require_positive_ints,
    run_dir,
    write_json,
    write_resolved_config,
)
from nims.resume import check_resume_config
from nims.step2 import check_step2_overrides
from nims.tracking import tracking_run

log = logging.getLogger(__name__)


def method_of(cfg: DictConfig):
    """The method ``cfg`` asks for: the saved masks of ``predictions=<dir>``, or ``method``."""
    if cfg.get("predictions"):
        from nims.benchmarks.saved_masks import SavedMasks

        if cfg.dataset.name != "davis2016":
            raise ValueError(
                f"predictions=<dir> scores DAVIS-2016 results; dataset="
                f"{cfg.dataset.name} has no saved-results layout"
            )
        return SavedMasks(cfg)
    from nims.methods import method_for

    return method_for(cfg)


def evaluate_sequence(
    cfg: DictConfig, folder: Path, name: str, method=None, benchmark=None
) -> dict:
    """Predict, write and score one sequence (or read back the score a resumed run left).
    ``method`` and ``benchmark`` are built from ``cfg`` when not given (a worker process)."""
    import torch

    benchmark = benchmark or benchmark_for(cfg, folder)
    parallel = benchmark.parallel and int(cfg.sequence_workers) > 1
    torch.set_num_threads(1 if parallel else int(cfg.threads))
    if cfg.get("resume"):
        saved = benchmark.saved_score(name)
        if saved is not None:
            log.info("%s: already written, skipped (resume)", name)
            return saved
    method = method or method_of(cfg)
    # A bar per sequence only when sequences run one at a time (workers' bars would interleave).
    show = cfg.get("progress", True) and not parallel
    data = benchmark.load(name, progress=f"{name} flow" if show else None)
    results = method.predict(data, progress=name if show else None)
    if not cfg.get("predictions"):  # saved masks are scored as they are
        results = postprocess_results(results, data.image, cfg.get("postprocess"))
    benchmark.write(data, results, method)
    score = benchmark.score(data, results, method)
    log.info("%s: %d frames done", name, data.n_frames)
    return score


def _guarded(cfg: DictConfig, folder: Path, name: str, method=None, benchmark=None):
    """``(name, score, None)``, or ``(name, None, message)`` when the sequence failed."""
    try:
        return name, evaluate_sequence(cfg, folder, name, method, benchmark), None
    except Exception as error:  # reported by name; the other sequences go on
        return name, None, f"{type(error).__name__}: {error}\n{traceback.format_exc()}"


def evaluate_sequences(cfg: DictConfig, folder: Path, tracker) -> float | None:
    """The one evaluation loop: every sequence of the benchmark through the method; then the
    benchmark's summary. Returns its headline number (what a sweeper reads)."""
    from joblib import Parallel, delayed

    method = method_of(cfg)  # fails before any data is read (checkpoint, folder, task)
    benchmark = benchmark_for(cfg, folder)
    names = benchmark.sequences()
    for entry in figures_not_drawn(cfg, names):
        log.warning("figures=%s", entry)
    bar = dict(total=len(names), desc="sequences", disable=bars_off(cfg.get("progress", True)))
    with workers_stopped_on_signal():
        if benchmark.parallel and int(cfg.sequence_workers) > 1:
            jobs = Parallel(
                n_jobs=int(cfg.sequence_workers), backend="loky", return_as="generator"
            )(delayed(_guarded)(cfg, folder, name) for name in names)
            outcomes = list(tqdm(jobs, **bar))
        else:
            outcomes = [
                _guarded(cfg, folder, name, method, benchmark) for name in tqdm(names, **bar)
            ]
    failures = {name: message for name, _, message in outcomes if message}
    scores: dict[str, dict] = {name: score for name, score, _ in outcomes if score is not None}
    write_json(folder / "failures.json", failures)
    for name, message in failures.items():
        log.error("sequence %s failed: %s", name, message.splitlines()[0])
    if cfg.get("resume"):
        # The sequences an earlier run wrote into this folder stay in the summary.
        for name in benchmark.earlier_sequences(names):
            scores[name] = benchmark.saved_score(name)
    reasons = "; ".join(f"{s}: {m.splitlines()[0]}" for s, m in failures.items())
    if not scores:
        raise RuntimeError(f"every sequence failed ({reasons}); see {folder / 'failures.json'}")
    headline = benchmark.summarise(scores, tracker, method)
    if failures:
        raise RuntimeError(
            f"{len(failures)} sequence(s) failed ({reasons}): the others' "
            f"results are in {folder}; details in failures.json"
        )
    return headline


@contextmanager
def workers_stopped_on_signal():
    """SIGTERM stops the run like Ctrl-C (SIGINT), and either one kills the worker processes
    too: without this, loky's workers outlive the parent for minutes and keep writing into the
    run folder."""
    from joblib.externals.loky import get_reusable_executor

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if in_main_thread else None
    try:
        yield
    except BaseException:
        get_reusable_executor().shutdown(wait=False, kill_workers=True)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def output_folder(cfg: DictConfig) -> Path:
    """Where this run writes: the folder ``resume=<folder>`` names, else the job's own."""
    return resumed_folder(cfg) or run_dir(cfg)


@announce_run_folder(folder_of=output_folder)
def run(cfg: DictConfig) -> float | None:
    """Entry point of ``evaluate.py``; returns the headline score (what a sweeper reads)."""
    require_positive_ints(cfg, ("sequence_workers", "threads", "batch_size"))
    if cfg.get("step2") is not None and not cfg.get("predictions"):
        check_step2_overrides(cfg.step2, command_line_keys("step2"))
    resolve_device(cfg.get("device", "cpu"))  # a device that is not there fails first
    folder = output_folder(cfg)
    if cfg.get("resume"):
        check_resume_config(cfg, folder)
    write_resolved_config(cfg, folder, continuing=bool(cfg.get("resume")))
    return _run_in(cfg, folder)


def resumed_folder(cfg: DictConfig) -> Path | None:
    """The run folder ``resume=<folder>`` names (None for ``resume=false|true``: ``true``
    continues in this job's own folder, e.g. with ``hydra.run.dir=<old run>``)."""
    resume = cfg.get("resume")
    if isinstance(resume, bool) or resume is None or str(resume).lower() in ("true", "false"):
        return None
    folder = Path(str(resume))
    if not (folder / "config.yaml").is_file():
        raise FileNotFoundError(
            f"resume={folder}: not a run folder of evaluate.py (no "
            "config.yaml); give the folder a run printed as its run folder"
        )
    return folder


def _run_in(cfg: DictConfig, folder: Path) -> float | None:
    """The evaluation ``cfg`` asks for, written to ``folder``."""
    with tracking_run(cfg, "eval", folder) as tracker:
        return evaluate_sequences(cfg, folder, tracker)
