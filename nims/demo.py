"""``python demo.py`` (``make demo``): NIMS end to end on something real, in a few minutes.

With ``dataset.root`` holding a DAVIS-layout dataset: NIMS on ``demo.sequence``. Otherwise on a
small built-in synthetic video of the task (``independent_synth`` or ``crowd_synth``, rendered,
its flow estimated like any video's). The classifier is the task's shipped checkpoint for the
video's kind of scenes (``checkpoints/<task>.pt``, ``independent_synth.pt`` for the independent
task's rendered video); without one, a classifier is trained briefly first.

Writes in the run folder, for the chosen frames: ``figure_NNNNN.png`` (image, flow, relevance,
R_sal, saliency), ``layers_NNNNN.png`` and ``candidate_regions_NNNNN.png`` (step 2), plus
``flow.flo`` of the first one, ``demo.json`` (J of each frame against its ground truth) and
``overview.png``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from nims import metrics
from nims.data import davis
from nims.data.flow_cache import sequence_flows
from nims.device import resolve_device
from nims.figures import (
    GROUND_TRUTH_COLOUR,
    MASK_COLOUR,
    frame_figure,
    outline,
    overlay,
    saliency_colours,
    saliency_key,
    swatch_key,
)
from nims.flow import write_flow
from nims.methods.nims import run_frames
from nims.model import load_classifier
from nims.postprocess import postprocess_results
from nims.report import (
    announce_run_folder,
    require_positive_ints,
    run_dir,
    write_json,
    write_resolved_config,
)
from nims.tracking import tracking_run
from nims.visualize import label_image, labels_figure, side_by_side, write_png

log = logging.getLogger(__name__)


def demo_video(cfg: DictConfig):
    """Frames (BGR), ground-truth masks and a description of the demo's input."""
    root = Path(str(cfg.dataset.root))
    default_root = Path(os.environ.get("NIMS_DATA", "data")) / "DAVIS"
    if root != default_root and not (root / "JPEGImages").is_dir():
        # A root the user named must be one: a typo must not silently demo synthetic data.
        raise FileNotFoundError(
            f"dataset.root={root} holds no JPEGImages/ folder (DAVIS "
            "layout): fix the path, or leave dataset.root out to demo on "
            "a built-in synthetic video"
        )
    if (root / "JPEGImages").is_dir():
        sequence = str(cfg.demo.sequence)
        if Path(sequence).name != sequence or sequence in (".", ".."):
            # A path would read frames outside the dataset.
            raise ValueError(
                f"demo.sequence={sequence} is not a sequence name: give a folder of "
                f"{root / 'JPEGImages' / '480p'} (e.g. demo.sequence=blackswan)"
            )
        frame_paths, annotation_paths = davis.check_sequence(root, sequence)
        count = min(len(frame_paths), int(cfg.demo.frames) + 1)
        frames = [davis.read_image(path) for path in frame_paths[:count]]
        truths = [davis.read_mask(path) for path in annotation_paths[:count]]
        return frames, truths, f"DAVIS {cfg.demo.sequence}", "davis2016", cfg.demo.sequence
    from nims.synthetic.sets import build_set

    synthetic = OmegaConf.create(
        {
            "name": f"{cfg.task.name}_synth",
            "videos": 3,
            "frames": int(cfg.demo.frames),
            "size": [128, 224],
            "salient_fraction": 1.0,
            "flow_source": "estimated",
            "cache_dir": cfg.demo.cache_dir,
            "seed": int(cfg.seed),
        }
    )
    folder = build_set(synthetic, cfg.flow, progress=False) / "video_0000"
    frames = list(np.load(folder / "frames.npy"))
    truths = list(np.load(folder / "masks.npy")) + [np.zeros(frames[0].shape[:2], bool)]
    return (
        frames,
        truths,
        f"synthetic {synthetic.name} video (no DAVIS at {root})",
        synthetic.name,
        "video_0000",
    )


def classifier(cfg: DictConfig, folder: Path):
    """The task's shipped checkpoint, or one trained briefly into the run folder."""
    checkpoint = Path(str(cfg.checkpoint))
    if checkpoint.is_file():
        return load_classifier(checkpoint, expected_task=cfg.task.name), str(checkpoint)
    from hydra import compose

    from nims import train

    log.warning("no checkpoint at %s: training a classifier briefly", checkpoint)
    train_cfg = compose(
        "train",
        [
            f"task={cfg.task.name}",
            "logger=none",
            f"device={cfg.device}",
            "trainer.epochs=2",
            f"dataset.videos={int(cfg.demo.train_videos)}",
            "dataset.frames=8",
            f"dataset.cache_dir={cfg.demo.cache_dir}",
            "progress=false",
        ],
        return_hydra_config=True,
    )
    with open_dict(train_cfg):
        train_cfg.hydra.runtime.output_dir = str(folder / "training")
    train.run(train_cfg)
    return load_classifier(folder / "training" / "best.pt"), "trained in this run"


@announce_run_folder
def run(cfg: DictConfig) -> dict:
    # One walk through the pipeline on purpose: a reader follows a frame from the video to the
    # figures in the order the method runs.
    require_positive_ints(cfg, ("demo.frames",))
    folder = run_dir(cfg)
    frames, truths, source, dataset_name, sequence = demo_video(cfg)
    if dataset_name != "davis2016":
        # A rendered video: the task's classifier for rendered scenes (the default checkpoint).
        cfg.dataset.scenes = "rendered"
    write_resolved_config(cfg, folder)
    model, model_source = classifier(cfg, folder)
    model = model.to(resolve_device(cfg.device))
    flows = sequence_flows(
        frames,
        cfg.flow,
        cfg.demo.cache_dir,
        dataset_name,
        sequence,
        progress=f"flow of {sequence}" if cfg.progress else None,
        store=cfg.paths.flow_format,
    )
    results = postprocess_results(
        run_frames(model, flows, cfg, progress="NIMS" if cfg.progress else None),
        frames.__getitem__,
        cfg.postprocess,
    )
    jaccards = [
        metrics.jaccard(result.mask, truth)
        for result, truth in zip(results, truths[: len(results)], strict=True)
    ]
    chosen = sorted({0, len(flows) // 2, len(flows) - 1})
    overview = [
        _draw_frame(
            folder,
            source,
            index,
            frames[index],
            flows[index],
            results[index],
            truths[index],
            jaccards[index],
        )
        for index in chosen
    ]
    write_flow(folder / "flow.flo", flows[chosen[0]])
    write_png(folder / "overview.png", np.vstack(overview))
    summary = {
        "source": source,
        "classifier": model_source,
        "flow": cfg.flow.name,
        "step2": cfg.step2.name,
        "frames": len(flows),
        "classified_salient": float(np.mean([r.logit > 0 for r in results])),
        "J_mean": float(np.mean(jaccards)),
        "J_per_frame": [round(j, 4) for j in jaccards],
    }
    write_json(folder / "demo.json", summary)
    _track(cfg, folder, summary, np.vstack(overview), f"{source}: frames {chosen}")
    print(
        f"{source}: NIMS on {len(flows)} frames with {model_source}; J mean "
        f"{summary['J_mean']:.3f}; figures in {folder}"
    )
    return summary


def _track(cfg: DictConfig, folder: Path, summary: dict, overview: np.ndarray, caption: str):
    """The demo's numbers, per-frame J and overview to the ``logger`` (nowhere with ``none``)."""
    with tracking_run(cfg, "demo", folder) as tracker:
        tracker.summary({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracker.table(
            "per_frame", [{"frame": i, "J": j} for i, j in enumerate(summary["J_per_frame"])]
        )
        tracker.images("overview", [overview], [caption])


def _draw_frame(folder, source: str, index: int, frame, flow, result, truth, jaccard: float):
    """Frame ``index``'s figures (the paper's panel, motion layers, candidate regions) in
    ``folder``; returns its row of the overview."""
    frame_figure(
        frame,
        flow,
        result,
        folder / f"figure_{index:05d}.png",
        f"{source}, frame {index}: J = {jaccard:.2f}",
        truth,
    )
    layers = result.segmentation.layers
    regions = result.segmentation.candidate_regions
    if layers is not None:
        write_png(
            folder / f"layers_{index:05d}.png",
            labels_figure(
                layers,
                f"{source}, frame {index}: {int(layers.max())} motion layers (1 = first peeled)",
                "layer",
            ),
        )
    write_png(
        folder / f"candidate_regions_{index:05d}.png",
        labels_figure(
            regions,
            f"{source}, frame {index}: {int(regions.max())} candidate regions, "
            f"kept {result.segmentation.salient_labels.tolist()}",
            "region",
        ),
    )
    masked = outline(overlay(frame, result.mask), truth, GROUND_TRUTH_COLOUR)
    row = side_by_side(
        [masked, label_image(regions), saliency_colours(result.saliency)],
        titles=[
            f"frame {index}: mask (J {jaccard:.2f}), ground truth in green",
            f"candidate regions ({int(regions.max())})",
            "saliency",
        ],
    )
    width = row.shape[1] // 3
    keys = np.hstack(
        [
            swatch_key(width, [(MASK_COLOUR, "mask"), (GROUND_TRUTH_COLOUR, "ground truth")]),
            np.full((34, width, 3), 255, np.uint8),
            saliency_key(row.shape[1] - 2 * width),
        ]
    )
    return np.vstack([row, keys])
