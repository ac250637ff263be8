"""``dataset=crowd_synth|independent_synth|parallax_synth``: the rendered task sets.

Each video of ``dataset.eval_split`` (default ``test``; the parallax set evaluates ``all``) is a
sequence. Per frame: J on the salient objects (salient frames), whether anything was marked and
how many pixels (``empty_when_not_salient``: the share of frames without a salient object where
nothing is), the share of the other objects' pixels (crowd members, near static objects) marked
salient, and for a classifying method the logit, the oracle J of step 2's regions and the
relevance diagnostic.
The summary gives, for NIMS, the frame accuracy and AP, J as the paper computes it (salient
frames classified salient) and over all salient frames; for the other methods J over all
salient frames and over those where they mark something.
"""

from __future__ import annotations

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
    write_strip,
)
from nims.methods import FrameResult
from nims.relevance_quality import mean_quality, relevance_flow_correlation, relevance_quality
from nims.report import atomic_write_text, markdown_table, write_csv, write_json
from nims.step2 import oracle_mask
from nims.synthetic.frames import SyntheticFrames
from nims.synthetic.sets import GENERATORS, build_set


def video_name(video: int) -> str:
    return f"video_{video:04d}"


def others_marked(mask: np.ndarray, others: np.ndarray | None) -> float:
    """Fraction of the other objects' visible pixels (parallax objects, crowd members) that a
    predicted mask wrongly marks salient; NaN when the frame shows none."""
    if others is None or not others.any():
        return float("nan")
    return float((mask & others).sum() / others.sum())


def _mean_or_zero(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


class SyntheticSet:
    """The videos of one rendered task set (generated and cached on first use)."""

    parallel = False

    def __init__(self, cfg: DictConfig, folder: Path):
        self.cfg, self.folder = cfg, folder
        self.split = str(cfg.dataset.get("eval_split", "test"))
        self.videos = SyntheticFrames(build_set(cfg.dataset, cfg.flow), self.split, (8, 8))

    def sequences(self) -> list[str]:
        return [video_name(video) for video in sorted(set(self.videos.videos))]

    def load(self, name: str, progress: str | None = None) -> SequenceData:
        arrays = self.videos.video_arrays(int(name.split("_")[1]))
        flows = [np.asarray(flow, dtype=np.float32) for flow in arrays["flows"]]
        return SequenceData(
            name,
            len(flows),
            lambda index: np.asarray(arrays["frames"][index]),
            lambda: flows,
            [np.asarray(mask) for mask in arrays["masks"]],
            {"labels": [int(label) for label in arrays["labels"]], "others": arrays.get("others")},
        )

    def saved_score(self, name: str) -> None:
        return None  # a synthetic run is short: it is not resumed

    def earlier_sequences(self, selected: list[str]) -> list[str]:
        return []

    def write(self, data: SequenceData, results: list[FrameResult], method) -> None:
        """Report strips of a few frames (methods with a relevance map), and the figures
        ``figures=[[video_NNNN, frame]]`` asks for."""
        drawn = report_frames(0, data.n_frames - 1, int(self.cfg.get("report_frames", 4)))
        for index in sorted(drawn):
            if results[index].relevance is not None:
                write_strip(self.folder, data, index, results[index])
        write_figures(self.cfg, self.folder, data, results)

    def score(self, data: SequenceData, results: list[FrameResult], method) -> dict:
        """One row per frame."""
        rows = []
        others = data.extra.get("others")
        for index, (result, truth) in enumerate(zip(results, data.truths, strict=True)):
            label = data.extra["labels"][index]
            row = {"video": int(data.name.split("_")[1]), "frame": index, "label": label}
            if method.classifies:
                row.update(
                    {
                        "logit": result.logit,
                        "relevance_flow_correlation": relevance_flow_correlation(
                            result.relevance, data.flows[index]
                        ),
                        **relevance_quality(result.relevance, truth),
                        "oracle_J": metrics.jaccard(oracle_mask(result.segmentation, truth), truth)
                        if label
                        else float("nan"),
                        "parallax_step": parallax_step_used(
                            result.segmentation, self.cfg.step2.name
                        ),
                    }
                )
            row.update(
                {
                    "detected": bool(result.logit > 0 if method.classifies else result.mask.any()),
                    "J": metrics.jaccard(result.mask, truth) if label else float("nan"),
                    "marked_pixels": int(result.mask.sum()),
                    "others_marked_salient": others_marked(
                        result.mask, None if others is None else np.asarray(others[index])
                    ),
                }
            )
            rows.append(row)
        return {"rows": rows}

    def summarise(self, scores: dict[str, dict], tracker, method) -> float:
        rows = [row for score in scores.values() for row in score["rows"]]
        salient = [r["J"] for r in rows if r["label"]]
        detected = [r["J"] for r in rows if r["label"] and r["detected"]]
        if method.classifies:
            from nims.frame_scores import classification_metrics

            summary = {
                f"frame_{k}": v
                for k, v in classification_metrics(
                    np.array([r["label"] for r in rows]), np.array([r["logit"] for r in rows])
                ).items()
            }
            summary.update(
                {
                    "J_mean_detected_salient": _mean_or_zero(detected),
                    "J_mean_all_salient": _mean_or_zero(salient),
                    "oracle_J_mean_all_salient": float(np.nanmean([r["oracle_J"] for r in rows]))
                    if salient
                    else 0.0,
                    "relevance_flow_correlation": float(
                        np.nanmean([r["relevance_flow_correlation"] for r in rows])
                    ),
                    **mean_quality(rows),
                    "parallax_step_frames": nan_mean(r.get("parallax_step") for r in rows),
                }
            )
        else:
            summary = {
                "J_mean_all_salient": _mean_or_zero(salient),
                "J_mean_detected_salient": _mean_or_zero(detected),
            }
        quiet = [r["marked_pixels"] == 0 for r in rows if not r["label"]]
        summary.update(
            {
                "others_marked_salient": nan_mean([r["others_marked_salient"] for r in rows]),
                # Frames without a salient object: the share where nothing at all is marked.
                "empty_when_not_salient": float(np.mean(quiet)) if quiet else float("nan"),
                "test_frames": len(rows),
                "salient_frames": len(salient),
            }
        )
        title = f"{method.title} on {self.cfg.dataset.name} ({self.split} videos)"
        self._write(rows, summary, title, tracker)
        return summary["J_mean_detected_salient" if method.classifies else "J_mean_all_salient"]

    def _write(self, rows: list[dict], summary: dict, title: str, tracker) -> None:
        """``per_frame.csv``, ``summary.json``, ``summary.md`` and ``report.html`` (one row
        per video); the table is printed and the summary logged."""
        from nims.html_report import write_html_report

        write_csv(self.folder / "per_frame.csv", rows)
        write_json(self.folder / "summary.json", summary)
        table = f"# {title}\n\n" + markdown_table([summary])
        atomic_write_text(self.folder / "summary.md", table)
        per_video = []
        for video in sorted({row["video"] for row in rows}):
            own = [row for row in rows if row["video"] == video]
            per_video.append(
                {
                    "Sequence": video_name(video),
                    "frames": len(own),
                    "salient frames": sum(int(row["label"]) for row in own),
                    "J (salient frames)": nan_mean([row["J"] for row in own]),
                }
            )
        write_html_report(
            self.folder,
            title,
            summary,
            per_video,
            [{**row, "sequence": video_name(row["video"])} for row in rows],
        )
        tracker.summary(summary)
        tracker.table("per_video", per_video)
        print(table)


for _name in GENERATORS:
    BENCHMARKS.register(_name)(SyntheticSet)
