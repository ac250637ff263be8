"""Ablation by inpainting (the paper's Fig. 2): does removing a region's motion flip the decision?

A region's flow is replaced by the affine motion fitted on a ring of pixels around it (what the
surroundings would do without the region's own motion), and the classifier's probability of
"salient" is compared before and after. Removing the independently moving objects should flip a
salient frame; removing a parallax object (e.g. a near tree trunk) should not.

Single frame: ``python ablate.py dataset.root=<DAVIS> ablation.sequence=... ablation.frame=...
ablation.region=gt|[x0,y0,x1,y1]|<mask.png>``. Batch: ``python ablate.py
dataset=independent_synth`` reports, over the correctly detected salient test frames, how often
removing the salient objects flips the decision, and how often removing the largest flow segment
that is not salient (the largest component moving unlike the dominant motion outside the
ground truth: a parallax object, typically) does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from nims.attribution import to_model_input
from nims.baselines import dominant_motion_mask
from nims.flow import check_flow
from nims.methods.nims import task_classifier
from nims.model import MotionClassifier
from nims.motion import fit_affine
from nims.report import (
    announce_run_folder,
    atomic_write_text,
    bars_off,
    markdown_table,
    run_dir,
    write_csv,
    write_json,
    write_resolved_config,
)
from nims.tracking import tracking_run


def check_region(region: np.ndarray, shape, name: str = "region") -> np.ndarray:
    """A boolean region mask of the flow's ``(H, W)``, neither empty nor the whole frame."""
    region = np.asarray(region)
    if region.shape != tuple(shape):
        raise ValueError(
            f"{name} mask is {region.shape[1] if region.ndim > 1 else '?'}x"
            f"{region.shape[0]}, the flow is {shape[1]}x{shape[0]}: give a mask of "
            "the frame's size"
        )
    region = region.astype(bool)
    if not region.any():
        raise ValueError(f"{name} mask is empty: nothing to inpaint")
    if region.all():
        raise ValueError(f"{name} mask covers the whole frame: no surroundings to inpaint from")
    return region


def inpaint_region(flow: np.ndarray, region: np.ndarray, margin: int = 30) -> np.ndarray:
    """The flow with ``region`` replaced by the affine motion of a ``margin``-pixel ring around
    it (the whole rest of the frame when the ring has fewer than 100 pixels)."""
    flow = check_flow(flow)
    region = check_region(region, flow.shape[:2])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    ring = cv2.dilate(region.astype(np.uint8), kernel).astype(bool) & ~region
    support = ring if ring.sum() >= 100 else ~region
    model = fit_affine(flow, support)
    inpainted = flow.copy()
    rows, cols = np.nonzero(region)
    inpainted[rows, cols] = model.at(cols, rows)
    return inpainted


@torch.no_grad()
def salient_probability(model: MotionClassifier, flows: list[np.ndarray]) -> np.ndarray:
    """The classifier's probability that each ``(H, W, 2)`` flow holds salient motion."""
    model.eval()
    batch = to_model_input(flows, model.input_size).to(model.fc.weight.device)
    return torch.sigmoid(model(batch)).cpu().numpy()


@dataclass
class Ablation:
    before: float
    after: float

    @property
    def flipped(self) -> bool:
        return self.before > 0.5 >= self.after


def ablate(
    model: MotionClassifier, flow: np.ndarray, region: np.ndarray, margin: int = 30
) -> Ablation:
    """Probability of "salient" before and after inpainting ``region``."""
    before, after = salient_probability(model, [flow, inpaint_region(flow, region, margin)])
    return Ablation(float(before), float(after))


def largest_other_motion(
    flow: np.ndarray, salient: np.ndarray, min_region: int = 50
) -> np.ndarray | None:
    """The largest connected region moving unlike the dominant motion that does not touch the
    salient objects, or None."""
    moving = dominant_motion_mask(flow, "otsu", min_region) & ~cv2.dilate(
        salient.astype(np.uint8), np.ones((5, 5), np.uint8)
    ).astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(moving.astype(np.uint8))
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def region_from_config(region, shape, truth: np.ndarray | None) -> np.ndarray:
    """``gt``, a box ``[x0, y0, x1, y1]`` (pixels) or a mask file, as an ``(H, W)`` mask."""
    if isinstance(region, str) and region == "gt":
        if truth is None:
            raise ValueError("ablation.region=gt needs a dataset with ground truth")
        return truth
    if isinstance(region, str):
        from nims.data.davis import read_mask

        return read_mask(Path(region))
    try:
        x0, y0, x1, y1 = (int(v) for v in region)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"ablation.region={region}: give gt, a mask file or a box [x0,y0,x1,y1] of "
            "integer pixel coordinates"
        ) from error
    height, width = shape
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        # Negative numbers would slice from the frame's end (numpy), a box off the frame
        # would ablate nothing or nearly everything: both are refused.
        raise ValueError(
            f"ablation.region=[{x0},{y0},{x1},{y1}] is not a box inside the {width}x{height} "
            f"frame: give 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}"
        )
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@announce_run_folder
def run(cfg: DictConfig) -> dict:
    """Entry point of ``ablate.py``."""
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    model = task_classifier(cfg)
    with tracking_run(cfg, "ablation", folder) as tracker:
        if cfg.dataset.name == "davis2016":
            summary = single_frame(cfg, model, folder)
        else:
            summary = batch(cfg, model, folder)
        tracker.summary({k: v for k, v in summary.items() if isinstance(v, (int, float))})
    return summary


def single_frame(cfg: DictConfig, model: MotionClassifier, folder: Path) -> dict:
    from nims.data import davis
    from nims.flow_backends import make_flow_estimator

    root = davis.resolve_root(cfg.dataset.root)
    frames, annotations = davis.check_sequence(root, cfg.ablation.sequence)
    index = int(cfg.ablation.frame)
    if not 0 <= index < len(frames) - 1:
        raise ValueError(f"ablation.frame must be in [0, {len(frames) - 2}], got {index}")
    flow = make_flow_estimator(cfg.flow)(
        davis.read_image(frames[index]), davis.read_image(frames[index + 1])
    )
    truth = davis.read_mask(annotations[index])
    region = region_from_config(cfg.ablation.region, flow.shape[:2], truth)
    result = ablate(model, flow, region, int(cfg.ablation.margin))
    summary = {
        "sequence": cfg.ablation.sequence,
        "frame": index,
        "region": str(cfg.ablation.region),
        "salient_before": result.before,
        "salient_after": result.after,
        "flipped": result.flipped,
    }
    write_json(folder / "ablation.json", summary)
    print(markdown_table([summary]))
    return summary


def batch(cfg: DictConfig, model: MotionClassifier, folder: Path) -> dict:
    from nims.synthetic.frames import SyntheticFrames
    from nims.synthetic.sets import build_set

    test = SyntheticFrames(build_set(cfg.dataset, cfg.flow), "test", model.input_size)
    rows = []
    videos = sorted(set(test.videos))
    for video in tqdm(videos, desc="test videos", unit="video", disable=bars_off(cfg.progress)):
        arrays = test.video_arrays(video)
        for frame in range(len(arrays["labels"])):
            if not arrays["labels"][frame]:
                continue
            flow = np.asarray(arrays["flows"][frame], dtype=np.float32)
            salient = np.asarray(arrays["masks"][frame])
            removed = ablate(model, flow, salient, int(cfg.ablation.margin))
            if removed.before <= 0.5:
                continue  # only frames the classifier calls salient can flip
            row = {
                "video": video,
                "frame": frame,
                "before": removed.before,
                "without_salient": removed.after,
                "salient_flip": removed.flipped,
            }
            other = largest_other_motion(flow, salient)
            if other is not None:
                without_other = ablate(model, flow, other, int(cfg.ablation.margin))
                row.update(
                    {
                        "without_other": without_other.after,
                        "other_flip": without_other.flipped,
                        "other_area": float(other.mean()),
                    }
                )
            rows.append(row)
    others = [r for r in rows if "other_flip" in r]
    summary = {
        "frames": len(rows),
        "flip_rate_salient_removed": float(np.mean([r["salient_flip"] for r in rows]))
        if rows
        else float("nan"),
        "frames_with_other_motion": len(others),
        "flip_rate_other_removed": float(np.mean([r["other_flip"] for r in others]))
        if others
        else float("nan"),
    }
    write_csv(folder / "ablation.csv", rows)
    write_json(folder / "summary.json", summary)
    table = f"# Ablation by inpainting on {cfg.dataset.name} (test videos)\n\n" + markdown_table(
        [summary]
    )
    atomic_write_text(folder / "summary.md", table)
    print(table)
    return summary
