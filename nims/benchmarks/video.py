"""``dataset=video dataset.input=<file or folder>``: a method on any video, no ground truth.

Writes masks (``masks/NNNNN.png``), saliency maps (``saliency/NNNNN.png``, 16-bit), an overlay
video (``overlay.mp4``: mask over the frame | saliency), ``contact_sheet.png`` (four frames),
``summary.json`` (frames, share classified salient, mean marked area) and ``report.html``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from nims.atomic import replaced_atomically
from nims.benchmarks import (
    BENCHMARKS,
    SequenceData,
    nan_mean,
    parallax_step_used,
    write_figures,
    write_mask,
    write_saliency,
    write_strip,
)
from nims.data.flow_cache import sequence_flows
from nims.methods import FrameResult
from nims.report import require_positive_ints, write_json


@BENCHMARKS.register("video")
class Video:
    """One video file or frame folder."""

    parallel = False

    def __init__(self, cfg: DictConfig, folder: Path):
        self.cfg, self.folder = cfg, folder
        self.source = Path(str(cfg.dataset.input))
        require_positive_ints(cfg, ("dataset.step",))
        if cfg.dataset.get("max_frames") is not None:
            require_positive_ints(cfg, ("dataset.max_frames",))

    def sequences(self) -> list[str]:
        return [self.source.stem]

    def load(self, name: str, progress: str | None = None) -> SequenceData:
        from nims.data.video import read_frames

        dataset = self.cfg.dataset
        frames = list(read_frames(self.source, dataset.max_frames, int(dataset.step)))
        return SequenceData(
            name,
            len(frames),
            frames.__getitem__,
            lambda: sequence_flows(
                frames,
                self.cfg.flow,
                dataset.cache_dir,
                "video",
                f"{name}-step{dataset.step}",
                progress=progress,
                store=self.cfg.paths.flow_format,
            ),
            extra={"frames": frames},
        )

    def saved_score(self, name: str) -> None:
        return None

    def earlier_sequences(self, selected: list[str]) -> list[str]:
        return []

    def write(self, data: SequenceData, results: list[FrameResult], method) -> None:
        from nims.figures import overlay
        from nims.visualize import side_by_side, write_png

        frames = data.extra["frames"]
        height, width = frames[0].shape[:2]
        with replaced_atomically(self.folder / "overlay.mp4", suffix=".mp4") as temporary:
            writer = cv2.VideoWriter(
                str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), 10, (2 * width, height)
            )
            for index, (frame, result) in enumerate(zip(frames, results, strict=True)):
                write_mask(self.folder / "masks" / f"{index:05d}.png", result.mask)
                write_saliency(self.folder / "saliency" / f"{index:05d}.png", result.saliency)
                heat = cv2.applyColorMap(
                    (255 * result.saliency).astype(np.uint8), cv2.COLORMAP_MAGMA
                )
                writer.write(
                    np.hstack([cv2.cvtColor(overlay(frame, result.mask), cv2.COLOR_RGB2BGR), heat])
                )
            writer.release()
        chosen = np.linspace(0, len(data.flows) - 1, min(4, len(data.flows))).round().astype(int)
        sheet = np.vstack(
            [
                side_by_side(
                    [
                        overlay(frames[i], results[i].mask),
                        (255 * results[i].saliency).astype(np.uint8),
                    ],
                    height=180,
                    titles=[
                        f"frame {i}: mask (logit {results[i].logit:.2f})",
                        f"frame {i}: saliency (0-1)",
                    ],
                )
                for i in chosen
            ]
        )
        write_png(self.folder / "contact_sheet.png", sheet)
        for index in chosen:
            if results[index].relevance is not None:
                write_strip(self.folder, data, index, results[index])
        write_figures(self.cfg, self.folder, data, results)

    def score(self, data: SequenceData, results: list[FrameResult], method) -> dict:
        logits = np.array([r.logit for r in results[:-1]])
        parallax = [parallax_step_used(r.segmentation, self.cfg.step2.name) for r in results]
        return {
            "frames": data.n_frames,
            "classified_salient": float(np.mean(logits > 0)) if method.classifies else float("nan"),
            "parallax_step_frames": nan_mean(parallax),
            "mean_salient_area": float(np.mean([r.mask.mean() for r in results])),
            "logits": [r.logit for r in results],
            "parallax_step": parallax,
        }

    def summarise(self, scores: dict[str, dict], tracker, method) -> None:
        from nims.html_report import write_html_report

        ((name, score),) = scores.items()
        keys = ("frames", "classified_salient", "parallax_step_frames", "mean_salient_area")
        summary = {key: score[key] for key in keys}
        write_json(self.folder / "summary.json", summary)
        write_html_report(
            self.folder,
            f"{method.title} on {self.source.name}",
            summary,
            [{"Sequence": name, **summary}],
            [
                {"sequence": name, "frame": index, "logit": logit, "parallax_step": parallax}
                for index, (logit, parallax) in enumerate(
                    zip(score["logits"], score["parallax_step"], strict=True)
                )
            ],
        )
        tracker.summary(summary)
        print(
            f"{summary['frames']} frames of {self.source}: maps, masks, overlay.mp4, "
            f"contact_sheet.png and report.html in {self.folder}"
        )
        return None
