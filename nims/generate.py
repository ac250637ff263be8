"""``python generate.py dataset=...``: build a synthetic task set, report it, draw it."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nims.report import announce_run_folder, run_dir, write_json, write_resolved_config
from nims.synthetic.davis_layout import write_davis_layout
from nims.synthetic.sets import GENERATORS, build_set
from nims.visualize import write_png


@announce_run_folder
def run(cfg: DictConfig) -> dict:
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    if cfg.dataset.name not in GENERATORS:
        raise ValueError(
            f"generate.py makes the synthetic sets {sorted(GENERATORS)}, "
            f"not dataset={cfg.dataset.name}"
        )
    start = time.perf_counter()
    cached = build_set(cfg.dataset, cfg.flow, progress=bool(cfg.get("progress", True)))
    seconds = time.perf_counter() - start
    statistics = {"set": str(cached), **set_statistics(cached), "seconds": round(seconds, 1)}
    write_json(folder / "statistics.json", statistics)
    write_png(folder / "contact_sheet.png", contact_sheet(cached))
    print(json.dumps(statistics, indent=2))
    print(f"contact sheet: {folder / 'contact_sheet.png'}")
    if cfg.get("davis_layout"):
        root = Path(str(cfg.davis_layout)).resolve()
        names = write_davis_layout(cached, root)
        statistics["davis_layout"] = str(root)
        write_json(folder / "statistics.json", statistics)
        print(
            f"{len(names)} videos in the DAVIS layout in {root}; score them with: python "
            f"evaluate.py dataset=davis2016 dataset.root={root} dataset.split=val "
            f"flow=precomputed flow.root={root / 'flows'}"
        )
    return statistics


def set_statistics(folder: Path) -> dict[str, object]:
    """Label balance and mask statistics of a cached set."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    coverage = []
    for video in range(manifest["videos"]):
        masks = np.load(Path(folder) / f"video_{video:04d}" / "masks.npy", mmap_mode="r")
        fractions = masks.mean(axis=(1, 2))
        coverage += fractions[fractions > 0].tolist()
    per_split = {
        split: float(np.mean([label for video in videos for label in manifest["labels"][video]]))
        for split, videos in manifest["splits"].items()
    }
    return {
        "videos": manifest["videos"],
        "frames": manifest["frames"],
        "salient_frame_fraction": manifest["salient_frames"] / manifest["frames"],
        "salient_fraction_per_split": per_split,
        "mask_area_mean": float(np.mean(coverage)) if coverage else 0.0,
        "mask_area_median": float(np.median(coverage)) if coverage else 0.0,
    }


def contact_sheet(folder: Path, videos: Sequence[int] | None = None, frames: int = 4) -> np.ndarray:
    """Rows of (frame, colour-coded flow, mask) for a few frames of a few videos, RGB uint8."""
    import cv2

    from nims.flow import flow_to_color
    from nims.visualize import side_by_side

    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if videos is None:
        salient = [v for v in range(manifest["videos"]) if any(manifest["labels"][v])]
        quiet = [v for v in range(manifest["videos"]) if not any(manifest["labels"][v])]
        videos = (salient[:2] + quiet[:1]) or [0]
    rows = []
    for video in videos:
        base = Path(folder) / f"video_{video:04d}"
        images = np.load(base / "frames.npy", mmap_mode="r")
        flows = np.load(base / "flows.npy", mmap_mode="r")
        masks = np.load(base / "masks.npy", mmap_mode="r")
        step = max(1, len(flows) // frames)
        for frame in range(0, len(flows), step)[:frames]:
            rgb = cv2.cvtColor(np.asarray(images[frame]), cv2.COLOR_BGR2RGB)
            mask = (np.asarray(masks[frame]) * 255).astype(np.uint8)
            label = "salient" if manifest["labels"][video][frame] else "not salient"
            rows.append(
                side_by_side(
                    [rgb, flow_to_color(np.asarray(flows[frame], dtype=np.float32)), mask],
                    height=images.shape[1],
                    titles=[
                        f"video {video} frame {frame} ({label})",
                        "flow (hue: direction)",
                        "salient mask",
                    ],
                )
            )
    return np.vstack(rows)
