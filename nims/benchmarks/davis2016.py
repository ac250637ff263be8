"""``dataset=davis2016``: DAVIS-2016 sequences, scored with the official protocol in memory.

Writes, per sequence, binary masks in the official results layout
(``Segmentations/480p/<method>/<seq>/NNNNN.png``), saliency maps (``saliency/<seq>/NNNNN.png``,
16-bit, 65535 = 1), for NIMS the oracle selection's masks (``Segmentations/480p/oracle/...``: the
candidate regions mostly inside the ground truth, the upper bound step 2's segmentation allows),
report strips and the figures ``figures=[[seq, frame]]`` asks for, and its score
(``scores/<seq>.json``: per-frame J/F, logits, relevance diagnostic), which a resume reads back.
The run gets ``per_frame.csv``, ``per_sequence.csv`` (the toolkit's column names),
``summary.json`` / ``summary.md`` (J/F Mean, Recall, Decay, J&F; for NIMS the oracle, the
relevance diagnostic and the rate of frames classified salient) and ``report.html``.
The last frame of a sequence has no forward flow: its mask is empty, and the protocol does not
score it. ``predictions=<dir>`` scores a results folder (``<dir>/<seq>/NNNNN.png``) with the
same code through :class:`nims.benchmarks.saved_masks.SavedMasks`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nims import metrics
from nims.benchmarks import (
    BENCHMARKS,
    SequenceData,
    nan_mean,
    parallax_step_used,
    report_frames,
    write_figures,
    write_mask,
    write_saliency,
    write_strip,
)
from nims.benchmarks.davis_protocol import (
    check_flow_sizes,
    classifier_summary,
    selected_sequences,
    sequence_rows,
    sequence_statistics,
)
from nims.benchmarks.synthetic import others_marked
from nims.data import davis
from nims.data.flow_cache import sequence_flows
from nims.methods import FrameResult
from nims.relevance_quality import mean_quality, relevance_flow_correlation, relevance_quality
from nims.report import atomic_write_text, markdown_table, write_csv, write_json, write_summary
from nims.resume import files_identity, run_identity
from nims.step2 import oracle_mask

log = logging.getLogger(__name__)


@BENCHMARKS.register("davis2016")
class Davis2016:
    """DAVIS-2016 sequences of ``dataset.root`` (official layout)."""

    parallel = True

    def __init__(self, cfg: DictConfig, folder: Path):
        self.cfg, self.folder = cfg, folder
        self.root = davis.resolve_root(cfg.dataset.root)
        self.resolution = cfg.dataset.resolution
        self.method = "predictions" if cfg.get("predictions") else str(cfg.method.name)
        self.run_identity = run_identity(cfg)

    def sequences(self) -> list[str]:
        return selected_sequences(self.cfg, self.root)

    def scores_masks_only(self, name: str) -> bool:
        """Saved masks of a sequence whose frames are not there: scored against the
        annotations alone (scoring needs no frame)."""
        frames = self.root / "JPEGImages" / self.resolution / name
        return bool(self.cfg.get("predictions")) and not frames.is_dir()

    def load(self, name: str, progress: str | None = None) -> SequenceData:
        if self.scores_masks_only(name):
            return self._annotations_only(name)
        frames, annotations = davis.check_sequence(self.root, name, self.resolution)
        shape = davis.read_image(frames[0]).shape[:2]
        truths = [davis.read_mask(path, shape, "the frames'") for path in annotations]

        def flows():
            computed = sequence_flows(
                davis.FrameSequence(frames),
                self.cfg.flow,
                self.cfg.dataset.cache_dir,
                "davis2016",
                name,
                progress=progress,
                store=self.cfg.paths.flow_format,
            )
            check_flow_sizes(computed, shape, name, self.cfg.flow)
            return computed

        return SequenceData(
            name,
            len(frames),
            lambda index: davis.read_image(frames[index]),
            flows,
            truths,
            {"others": self._others(name, len(annotations), shape)},
        )

    def _others(self, name: str, count: int, shape) -> list[np.ndarray] | None:
        """The masks of ``Others/<resolution>/<name>/`` (objects that must not be marked, as
        :mod:`nims.synthetic.davis_layout` writes them), one per annotation; None without that
        folder (DAVIS itself)."""
        folder = self.root / "Others" / self.resolution / name
        if not folder.is_dir():
            return None
        paths = sorted(folder.glob("*.png"))
        if len(paths) != count:
            raise ValueError(
                f"{folder} holds {len(paths)} masks for {count} annotations: write one per "
                "frame, or remove the folder"
            )
        return [davis.read_mask(path, shape, "the frames'") for path in paths]

    def _annotations_only(self, name: str) -> SequenceData:
        """A sequence of a DAVIS copy without ``JPEGImages``: its annotations, to score saved
        masks (which need neither frames nor flows)."""
        annotations = davis.annotation_paths(self.root, name, self.resolution)
        shape = davis.read_mask(annotations[0]).shape
        truths = [davis.read_mask(path, shape, "the first annotation's") for path in annotations]

        def absent(*_):
            raise FileNotFoundError(
                f"sequence {name!r}: no frames in {self.root / 'JPEGImages' / self.resolution}; "
                "saved masks are scored without them, anything else needs them"
            )

        return SequenceData(name, len(annotations), absent, absent, truths)

    def score_path(self, name: str) -> Path:
        return self.folder / "scores" / f"{name}.json"

    def sequence_identity(self, name: str) -> str:
        """The run's identity and that of the sequence's input files (frames, annotations,
        saved masks): what a resumed score must match."""
        paths = (
            []
            if self.scores_masks_only(name)
            else davis.image_paths(self.root, name, self.resolution)
        )
        paths += davis.annotation_paths(self.root, name, self.resolution)
        if self.cfg.get("predictions"):
            paths += sorted((Path(str(self.cfg.predictions)) / name).glob("*.png"))
        return f"{self.run_identity}-{files_identity(paths)}"

    def saved_score(self, name: str) -> dict | None:
        """The score an earlier run left for ``name`` with all its masks (resume), or None;
        None too, with a note, when its config, checkpoint or input files were others."""
        path = self.score_path(name)
        masks = self.folder / "Segmentations" / "480p" / self.method / name
        if not path.is_file() or not masks.is_dir():
            return None
        try:
            score = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            log.warning("%s is unreadable (%s): sequence %s is computed again", path, error, name)
            return None
        try:
            current = self.sequence_identity(name)
        except (OSError, ValueError) as error:
            log.warning(
                "sequence %s's files cannot be listed (%s): its score is not reused", name, error
            )
            return None
        if score.get("identity") != current:
            log.warning(
                "%s was computed with another config, checkpoint or input files: sequence %s "
                "is computed again",
                path,
                name,
            )
            return None
        return score if len(list(masks.glob("*.png"))) == len(score["J"]) else None

    def earlier_sequences(self, selected: list[str]) -> list[str]:
        """Sequences outside ``selected`` whose results an earlier run left complete in the
        folder with this run's identity (a resume with a subset keeps them in the summary)."""
        scores = self.folder / "scores"
        names = sorted(path.stem for path in scores.glob("*.json")) if scores.is_dir() else []
        return [name for name in names if name not in selected and self.saved_score(name)]

    def write(self, data: SequenceData, results: list[FrameResult], method) -> None:
        if not getattr(method, "writes", True):
            return
        masks = self.folder / "Segmentations" / "480p"
        # Frames drawn in report.html: spread over the scored ones (1 .. n - 2).
        drawn = report_frames(1, data.n_frames - 2, int(self.cfg.get("report_frames", 4)))
        for index, result in enumerate(results):
            name = f"{index:05d}.png"
            write_mask(masks / self.method / data.name / name, result.mask)
            if result.segmentation is not None:
                write_mask(masks / "oracle" / data.name / name, _oracle_masks(data, results)[index])
            write_saliency(self.folder / "saliency" / data.name / name, result.saliency)
            if index in drawn and result.relevance is not None:
                write_strip(self.folder, data, index, result)
        write_figures(self.cfg, self.folder, data, results)

    def score(self, data: SequenceData, results: list[FrameResult], method) -> dict:
        """Per-frame J and F (all frames; the protocol's statistics skip the first and last),
        and for a classifying method the oracle's, the logits and the relevance diagnostic."""
        frames, _ = metrics.evaluate_sequence([r.mask for r in results], data.truths)
        score = {"J": frames["J"], "F": frames["F"]}
        if data.extra.get("others") is not None:
            score["others_marked"] = [
                others_marked(r.mask, o) for r, o in zip(results, data.extra["others"], strict=True)
            ]
        if method.classifies:
            oracle, _ = metrics.evaluate_sequence(_oracle_masks(data, results), data.truths)
            flows = data.flows
            logits = [r.logit for r in results if np.isfinite(r.logit)]
            quality = [
                relevance_quality(r.relevance, t)
                for r, t in zip(results[: len(flows)], data.truths[: len(flows)], strict=True)
            ]
            score.update(
                {
                    "oracle_J": oracle["J"],
                    "oracle_F": oracle["F"],
                    "logits": logits,
                    "salient_rate": float(np.mean(np.array(logits) > 0))
                    if logits
                    else float("nan"),
                    "parallax_step_rate": nan_mean(
                        parallax_step_used(r.segmentation, self.cfg.step2.name) for r in results
                    ),
                    "relevance": {
                        "relevance_flow_correlation": nan_mean(
                            [
                                relevance_flow_correlation(r.relevance, f)
                                for r, f in zip(results[: len(flows)], flows, strict=True)
                            ]
                        ),
                        **mean_quality(quality),
                    },
                }
            )
        score["identity"] = self.sequence_identity(data.name)
        write_json(self.score_path(data.name), score)
        return score

    def summarise(self, scores: dict[str, dict], tracker, method) -> float:
        """The run's tables, report and W&B summary from every sequence's score; returns J&F."""
        classified = method.classifies
        per_frame, per_sequence, oracle_sequence = [], {}, {}
        for name, score in scores.items():
            per_sequence[name] = sequence_statistics(score["J"], score["F"])
            last = len(score["J"]) - 1
            for index, (j, f) in enumerate(zip(score["J"], score["F"], strict=True)):
                # The protocol scores neither the first nor the last frame.
                row = {"sequence": name, "frame": index, "scored": 0 < index < last, "J": j, "F": f}
                if classified:
                    row.update(
                        {"oracle_J": score["oracle_J"][index], "oracle_F": score["oracle_F"][index]}
                    )
                per_frame.append(row)
            if classified:
                oracle_sequence[name] = sequence_statistics(score["oracle_J"], score["oracle_F"])
        summary = metrics.dataset_summary(per_sequence)
        marked = [
            share
            for score in scores.values()
            for share in score.get("others_marked", [])[1:-1]  # the protocol's frames
        ]
        if marked:
            summary["others_marked_salient"] = nan_mean(marked)
        if self.cfg.get("predictions"):
            title = f"DAVIS-2016 {', '.join(scores)}: {Path(str(self.cfg.predictions)).name}"
        else:
            title = (
                f"{self.method} on DAVIS-2016 ({len(scores)} "
                f"sequence{'s' if len(scores) != 1 else ''}, flow "
                f"{self.cfg.flow.name}"
                + (f", step 2 {self.cfg.step2.name})" if classified else ")")
            )
        extra = classifier_summary(scores, summary, oracle_sequence) if classified else ""
        rows = sequence_rows(per_sequence)
        write_csv(self.folder / "per_frame.csv", per_frame)
        write_csv(self.folder / "per_sequence.csv", rows)
        table = write_summary(self.folder, summary, title) + extra
        if "others_marked_salient" in summary:
            table += (
                "\nShare of the pixels of `Others` (objects that must not be marked) marked "
                f"salient: {summary['others_marked_salient']:.3f}\n"
            )
        atomic_write_text(self.folder / "summary.md", table)
        from nims.html_report import write_html_report

        write_html_report(self.folder, title, summary, rows, per_frame)
        tracker.summary(summary)
        tracker.table("per_sequence", rows)
        figures = sorted((self.folder / "figures").glob("*.png"))
        if figures:
            import cv2

            tracker.images(
                "figures",
                [cv2.imread(str(p))[..., ::-1] for p in figures],
                [p.stem for p in figures],
            )
        print(table)
        print(markdown_table(rows))
        return summary["J&F"]


def _oracle_masks(data: SequenceData, results: list[FrameResult]) -> list:
    """The oracle selection's mask of every frame, computed once per sequence (written by
    ``write``, scored by ``score``)."""
    if "oracle_masks" not in data.extra:
        data.extra["oracle_masks"] = [
            oracle_mask(r.segmentation, t) for r, t in zip(results, data.truths, strict=True)
        ]
    return data.extra["oracle_masks"]
