"""``python evaluate.py``: score segmentations on DAVIS-2016 with the official protocol.

``predictions=<dir>`` scores an existing results folder (``<dir>/<sequence>/NNNNN.png``), so
any method's results can be compared with NIMS's in the same table. Writes in the run folder:
``config.yaml``, ``per_frame.csv``, ``per_sequence.csv``, ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from omegaconf import DictConfig

from nims import metrics
from nims.data import davis
from nims.report import run_dir, write_csv, write_resolved_config, write_summary
from nims.tracking import tracking_run

log = logging.getLogger(__name__)


def selected_sequences(cfg: DictConfig, root: Path) -> List[str]:
    """``dataset.sequences`` when given, else the sequences of ``dataset.split``."""
    if cfg.dataset.get("sequences"):
        return [str(name) for name in cfg.dataset.sequences]
    return davis.split_sequences(root, cfg.dataset.split, cfg.dataset.resolution)


def score_sequence(root: Path, sequence: str, predictions: Path, resolution: str = "480p",
                   first_index: str = "auto"):
    """Per-frame J/F and statistics of one sequence of a results folder.

    Frames that the protocol does not score (first, last) may be missing: they count as empty.
    """
    annotation_files = davis.annotation_paths(root, sequence, resolution)
    prediction_files = davis.prediction_paths(predictions, sequence, len(annotation_files),
                                              first_index)
    annotations = [davis.read_mask(path) for path in annotation_files]
    masks = [np.zeros_like(annotation) if path is None else davis.read_mask(path, annotation.shape)
             for path, annotation in zip(prediction_files, annotations)]
    return metrics.evaluate_sequence(masks, annotations)


def score_predictions(root: Path, predictions: Path, sequences: Sequence[str],
                      resolution: str = "480p", first_index: str = "auto"):
    """Score a results folder on the given sequences.

    Returns
    -------
    per_frame : list of dict
        Rows ``sequence, frame, J, F`` (all frames, the unscored first and last included).
    per_sequence : dict
        ``{sequence: {"J": {"mean", "recall", "decay"}, "F": {...}}}``.
    """
    predictions = Path(predictions)
    if not predictions.is_dir():
        raise FileNotFoundError(f"predictions folder {predictions} does not exist")
    per_frame, per_sequence = [], {}
    for sequence in sequences:
        frames, per_sequence[sequence] = score_sequence(root, sequence, predictions, resolution,
                                                        first_index)
        per_frame += [{"sequence": sequence, "frame": index, "J": j, "F": f}
                      for index, (j, f) in enumerate(zip(frames["J"], frames["F"]))]
    return per_frame, per_sequence


def sequence_rows(per_sequence: Dict[str, Dict[str, Dict[str, float]]]) -> List[Dict[str, object]]:
    """Flatten per-sequence statistics into CSV rows."""
    return [{"sequence": name, **{f"{measure}_{statistic}": value
                                  for measure, stats in result.items()
                                  for statistic, value in stats.items()}}
            for name, result in per_sequence.items()]


def run(cfg: DictConfig) -> Optional[float]:
    """Entry point of ``evaluate.py``; returns J&F (what a sweeper can optimise)."""
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    if not cfg.get("predictions"):
        raise ValueError(
            "predictions=<results folder> is required: give the folder holding "
            "<sequence>/NNNNN.png masks to score")
    root = davis.resolve_root(cfg.dataset.root)
    sequences = selected_sequences(cfg, root)
    with tracking_run(cfg, "eval", folder) as tracker:
        per_frame, per_sequence = score_predictions(
            root, Path(cfg.predictions), sequences, cfg.dataset.resolution,
            cfg.predictions_first_index)
        rows = sequence_rows(per_sequence)
        write_csv(folder / "per_frame.csv", per_frame)
        write_csv(folder / "per_sequence.csv", rows)
        summary = metrics.dataset_summary(per_sequence)
        table = write_summary(folder, summary, f"DAVIS-2016 {', '.join(sequences)}: "
                                               f"{Path(cfg.predictions).name}")
        tracker.summary(summary)
        tracker.table("per_sequence", rows)
    print(table)
    log.info("results in %s", folder)
    return summary["J&F"]
