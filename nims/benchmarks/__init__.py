"""Benchmarks: what lists a dataset's sequences, feeds a method their flows, writes the results
once and scores them in memory (``dataset=...``).

A benchmark class takes ``(cfg, folder)`` and provides

- ``sequences()``: the names to evaluate, in order;
- ``load(name)``: a :class:`SequenceData` (frames, flows, ground truth where there is one);
- ``write(data, results)``: the run's files for one sequence (masks, maps, report strips);
- ``score(data, results)``: a JSON-able score of one sequence (per-frame rows and more);
- ``summarise(scores, tracker)``: the run's tables from every sequence's score; returns the
  headline number a sweep reads.

``parallel = True`` lets ``sequence_workers`` spread sequences over processes. ``write`` also
draws the panels ``figures=[[sequence, frame], ...]`` asks for (:func:`write_figures`). The loop
that runs a method on a benchmark is :func:`nims.evaluate.evaluate_sequences`. Adding a dataset
is one module here and one ``conf/dataset/<name>.yaml``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from nims.atomic import replaced_atomically
from nims.registry import Registry

BENCHMARKS: Registry = Registry("benchmark")
log = logging.getLogger(__name__)


@dataclass
class SequenceData:
    """One sequence of a benchmark.

    Attributes
    ----------
    name : str
    n_frames : int
    image : callable
        ``image(index)``: frame ``index``, ``(H, W, 3)`` uint8 BGR (read when asked).
    flow_source : callable
        Computes (or reads) the ``n_frames - 1`` forward flows ``(H, W, 2)`` in pixels, once,
        on first use of :attr:`flows` (scoring saved masks never needs them).
    truths : list of (H, W) bool arrays, or None
        Ground truth per frame (None: a video without annotations).
    extra : dict
        What else a benchmark scores with (frame labels, other objects' masks).
    """

    name: str
    n_frames: int
    image: Callable[[int], np.ndarray]
    flow_source: Callable[[], list[np.ndarray]]
    truths: Sequence[np.ndarray] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @functools.cached_property
    def flows(self) -> list[np.ndarray]:
        return self.flow_source()


def write_png(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` as PNG and write it atomically (temporary file, then rename): a full
    disk or a killed run never leaves a truncated PNG that a resume would trust."""
    encoded, data = cv2.imencode(".png", image)
    if not encoded:
        raise OSError(f"could not encode {path}")
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(data.tobytes())


def write_mask(path: Path, mask: np.ndarray) -> None:
    """A binary mask as an 8-bit PNG (255: salient)."""
    write_png(path, mask.astype(np.uint8) * 255)


def write_saliency(path: Path, saliency: np.ndarray) -> None:
    """A saliency map in [0, 1] as a 16-bit PNG (65535 = 1)."""
    write_png(path, np.round(saliency * 65535).astype(np.uint16))


def report_frames(first: int, last: int, count: int) -> set:
    """Up to ``count`` frame indices spread evenly over ``first .. last`` (report.html)."""
    count = min(count, last - first + 1)
    return set(np.linspace(first, last, count).round().astype(int).tolist()) if count > 0 else set()


def write_strip(folder: Path, data: SequenceData, index: int, result) -> None:
    """Frame ``index``'s strip for report.html, ``report/<sequence>/NNNNN.png``: image, flow,
    relevance, mask over the image with the ground truth outlined (none for a video), map."""
    from nims.figures import report_strip

    truth = data.truths[index] if data.truths is not None else None
    strip = report_strip(data.image(index), data.flows[index], result, truth)
    write_png(folder / "report" / data.name / f"{index:05d}.png", strip[..., ::-1])


def write_figures(cfg, folder: Path, data: SequenceData, results) -> None:
    """The panels of :func:`nims.figures.frame_figure` that ``figures=[[sequence, frame], ...]``
    asks of ``data``'s sequence, as ``figures/<sequence>_NNNNN.png``; a frame without flow, or a
    method without relevance, gets a warning naming the entry instead of a figure."""
    from nims.figures import frame_figure

    for sequence, frame in cfg.get("figures") or []:
        if str(sequence) != data.name:
            continue
        index = int(frame)
        if not 0 <= index < len(data.flows):
            log.warning(
                "figures=[[%s, %s]]: no figure, %s has flow for frames 0-%d only",
                sequence,
                frame,
                data.name,
                len(data.flows) - 1,
            )
        elif results[index].relevance is None:
            log.warning(
                "figures=[[%s, %s]]: no figure, method=%s has no relevance map to draw",
                sequence,
                frame,
                cfg.method.name,
            )
        else:
            frame_figure(
                data.image(index),
                data.flows[index],
                results[index],
                folder / "figures" / f"{data.name}_{index:05d}.png",
                f"{data.name} frame {index}",
                None if data.truths is None else data.truths[index],
            )


def figures_not_drawn(cfg, names: Sequence[str]) -> list[str]:
    """The entries of ``figures`` whose sequence is not among the run's ``names``, each with
    the names it has, for a warning before the run."""
    listed = set(names)
    shown = ", ".join(list(names)[:5]) + (", ..." if len(names) > 5 else "")
    return [
        f"[{sequence}, {frame}]: no sequence {sequence} in this run ({shown})"
        for sequence, frame in cfg.get("figures") or []
        if str(sequence) not in listed
    ]


def nan_mean(values) -> float:
    """Mean of the finite values, NaN when there is none (no warning)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]  # JSON null is NaN
    return float(np.mean(finite)) if finite else float("nan")


def parallax_step_used(segmentation, configured_step: str) -> float:
    """1.0 when another step 2 than the configured one made the frame's candidate regions (the
    hierarchical step hands a frame whose flow shows parallax to ``step2.parallax_step``), 0.0
    when the configured one did, NaN for a frame that step 2 did not see (a sequence's last
    frame, without flow)."""
    if segmentation is None or not segmentation.step:
        return float("nan")
    return float(segmentation.step != configured_step)


def benchmark_for(cfg, folder: Path):
    """The benchmark ``dataset.name`` names, for a run writing into ``folder``."""
    # Importing the modules registers their benchmarks.
    from nims.benchmarks import davis2016, synthetic, video  # noqa: F401

    name = str(cfg.dataset.name)
    if name not in BENCHMARKS:
        raise ValueError(
            f"dataset={name} cannot be evaluated (a training set for train.py, or a misspelt "
            f"name); evaluate.py scores dataset={', '.join(BENCHMARKS.names())}"
        )
    return BENCHMARKS.get(name)(cfg, folder)
