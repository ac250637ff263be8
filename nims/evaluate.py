"""``python evaluate.py``: run NIMS on a dataset and score it, or score existing results.

- ``dataset=davis2016``: NIMS on the chosen split or sequences. Writes binary masks in the
  official results layout (``Segmentations/480p/nims/<seq>/NNNNN.png``), saliency maps
  (``saliency/<seq>/NNNNN.png``, 16-bit, 65535 = 1), the oracle selection's masks
  (``Segmentations/480p/oracle/...``: the candidate regions mostly inside the ground truth, the
  upper bound step 2's segmentation allows), ``per_frame.csv``, ``per_sequence.csv``,
  ``summary.json`` / ``summary.md`` (J/F Mean, Recall, Decay, J&F, for NIMS and the oracle, and
  the rate of frames classified salient) and ``failures.json``. Sequences run in parallel
  (``num_workers``); one that fails is reported by name without losing the others, and
  ``resume=true`` skips sequences whose masks are already written. The last frame of a sequence
  has no forward flow: its mask is empty, and the protocol does not score it.
- ``predictions=<dir>``: score an existing results folder (``<dir>/<sequence>/NNNNN.png``) with
  the same code, so any method lands in the same table.
- ``dataset=video dataset.input=<file or folder>``: saliency maps, masks, ``overlay.mp4`` and
  ``contact_sheet.png``; no ground truth.
- ``figures=[[blackswan,10]]`` draws the paper's Fig. 4/5 panels for chosen DAVIS frames.
- ``dataset=crowd_synth|independent_synth|parallax_synth``: on the test videos (every video of
  the parallax set), the classifier's frame accuracy and AP, J as the paper computes it
  (salient frames classified salient) and over all salient frames, and the share of the other
  objects' pixels (crowd members, near static objects) marked salient.
- ``method=dominant_motion`` runs the flow-only baseline and ``method=unet`` the supervised
  U-Net (synthetic sets) through the same measures.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from nims import metrics
from nims.atomic import replaced_atomically
from nims.data import davis
from nims.data.flow_cache import sequence_flows
from nims.device import resolve_device
from nims.figures import frame_figure, report_strip
from nims.html_report import write_html_report
from nims.model import load_classifier
from nims.pipeline import oracle_mask, sequence_results
from nims.relevance_quality import mean_quality, relevance_flow_correlation, relevance_quality
from nims.report import (announce_run_folder, atomic_write_text, markdown_table,
                         require_positive_ints, run_dir, write_csv, write_json,
                         write_resolved_config, write_summary)
from nims.tracking import tracking_run

log = logging.getLogger(__name__)


def selected_sequences(cfg: DictConfig, root: Path) -> List[str]:
    """``dataset.sequences`` when given, else the sequences of ``dataset.split`` present under
    ``root``: a partial copy of DAVIS evaluates what it holds and names what it lacks in one
    line (``dataset.strict=true`` makes a missing sequence an error)."""
    images = root / "JPEGImages" / cfg.dataset.resolution
    if cfg.dataset.get("sequences"):
        names = [str(name) for name in cfg.dataset.sequences]
        available = sorted(p.name for p in images.iterdir() if p.is_dir()) \
            if images.is_dir() else []
        for name in names:
            # A name is a folder of the dataset, never a path: "../x" would read and write
            # outside the dataset and the run folder.
            if name not in available:
                raise FileNotFoundError(
                    f"dataset.sequences: {name!r} is not a sequence folder of {images} "
                    f"(available: {', '.join(available) or 'none'})")
        return names
    names = davis.split_sequences(root, cfg.dataset.split, cfg.dataset.resolution)
    present = [name for name in names if (images / name).is_dir()]
    missing = [name for name in names if name not in present]
    if missing and (cfg.dataset.get("strict", False) or not present):
        raise FileNotFoundError(f"{len(missing)} of the {len(names)} {cfg.dataset.split} "
                                f"sequences are missing under {images} ({', '.join(missing)}): "
                                "complete the copy or list dataset.sequences"
                                + (", or set dataset.strict=false" if present else ""))
    if missing:
        log.warning("%d of the %d %s sequences are not under %s and are skipped (%s); "
                    "dataset.strict=true makes this an error", len(missing), len(names),
                    cfg.dataset.split, images, ", ".join(missing))
    return present


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
    """Flatten per-sequence statistics into rows with the DAVIS toolkit's column names
    (``Sequence``, ``J-Mean``, ``J-Recall``, ``J-Decay``, ``F-Mean``, ...)."""
    return [{"Sequence": name, **{f"{measure}-{statistic.capitalize()}": value
                                  for measure, stats in result.items()
                                  for statistic, value in stats.items()}}
            for name, result in per_sequence.items()]


def _write_png(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` as PNG and write it atomically (temporary file, then rename): a full
    disk or a killed run never leaves a truncated PNG that a resume would trust."""
    encoded, data = cv2.imencode(".png", image)
    if not encoded:
        raise OSError(f"could not encode {path}")
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(data.tobytes())


def task_classifier(cfg: DictConfig):
    """The classifier ``checkpoint`` names, checked against ``task``, on ``device``."""
    return load_classifier(cfg.checkpoint, expected_task=cfg.task.name).to(
        resolve_device(cfg.get("device", "cpu")))


def report_frames(first: int, last: int, count: int) -> set:
    """Up to ``count`` frame indices spread evenly over ``first .. last`` (report.html)."""
    count = min(count, last - first + 1)
    return set(np.linspace(first, last, count).round().astype(int).tolist()) if count > 0 \
        else set()


def write_strip(folder: Path, sequence: str, index: int, image_bgr: np.ndarray,
                flow: np.ndarray, result, truth: np.ndarray) -> None:
    """One frame's strip for report.html, ``report/<sequence>/NNNNN.png``."""
    strip = report_strip(image_bgr, flow, result, truth)
    _write_png(folder / "report" / sequence / f"{index:05d}.png", strip[..., ::-1])


def _write_mask(path: Path, mask: np.ndarray) -> None:
    _write_png(path, mask.astype(np.uint8) * 255)


def sequence_done(folder: Path, method: str, sequence: str, n_frames: int) -> bool:
    masks = folder / "Segmentations" / "480p" / method / sequence
    return masks.is_dir() and len(list(masks.glob("*.png"))) == n_frames and (
        folder / "classification" / f"{sequence}.json").is_file()


def _write_saliency(path: Path, saliency: np.ndarray) -> None:
    _write_png(path, np.round(saliency * 65535).astype(np.uint16))


def nims_on_sequence(cfg: DictConfig, frames, annotations, flows, sequence: str,
                     folder: Path) -> List[float]:
    """NIMS on one sequence: masks, saliency, oracle masks, figures and the relevance
    diagnostic (``classification/<sequence>.relevance.json``); returns the logits."""
    model = task_classifier(cfg)
    # A bar per sequence only when sequences run one at a time (workers' bars would interleave).
    bar = sequence if cfg.get("progress", True) and int(cfg.num_workers) == 1 else None
    results = sequence_results(model, flows, cfg, len(frames), progress=bar)
    quality = []
    # Frames drawn in report.html: spread over the scored ones (1 .. n - 2).
    drawn = report_frames(1, len(frames) - 2, int(cfg.get("report_frames", 4)))
    for index, (result, annotation_path) in enumerate(zip(results, annotations)):
        name = f"{index:05d}.png"
        _write_mask(folder / "Segmentations" / "480p" / "nims" / sequence / name, result.mask)
        truth = davis.read_mask(annotation_path, result.mask.shape, "the frames'")
        _write_mask(folder / "Segmentations" / "480p" / "oracle" / sequence / name,
                    oracle_mask(result.segmentation, truth))
        _write_saliency(folder / "saliency" / sequence / name, result.saliency)
        if index < len(flows):
            quality.append(relevance_quality(result.relevance, truth))
        if index in drawn:
            write_strip(folder, sequence, index, davis.read_image(frames[index]), flows[index],
                        result, truth)
    for figure_sequence, figure_frame in cfg.get("figures") or []:
        if figure_sequence == sequence and 0 <= int(figure_frame) < len(flows):
            index = int(figure_frame)
            frame_figure(davis.read_image(frames[index]), flows[index], results[index],
                         folder / "figures" / f"{sequence}_{index:05d}.png",
                         f"{sequence} frame {index}", davis.read_mask(annotations[index]))
    correlations = [relevance_flow_correlation(r.relevance, f) for r, f in zip(results, flows)]
    write_json(folder / "classification" / f"{sequence}.relevance.json",
               {"relevance_flow_correlation": nan_mean(correlations),
                **mean_quality(quality)})
    return [r.logit for r in results if np.isfinite(r.logit)]


def dominant_motion_on_sequence(cfg: DictConfig, frames, flows, sequence: str,
                                folder: Path) -> List[float]:
    """The dominant-motion baseline on one sequence (no classifier: no logits)."""
    from nims.baselines import dominant_motion_mask, residual_magnitude

    for index in range(len(frames)):
        name = f"{index:05d}.png"
        if index < len(flows):
            mask = dominant_motion_mask(flows[index], cfg.method.threshold,
                                        int(cfg.method.min_region))
            saliency = 1 - np.exp(-float(cfg.saliency.lam) * residual_magnitude(flows[index]))
        else:  # the last frame has no forward flow
            mask = np.zeros(flows[0].shape[:2], dtype=bool)
            saliency = np.zeros(mask.shape)
        _write_mask(folder / "Segmentations" / "480p" / "dominant_motion" / sequence / name, mask)
        _write_saliency(folder / "saliency" / sequence / name, saliency)
    return []


def read_run_json(path: Path) -> dict:
    """A JSON file this run (or the run it resumes) wrote, with a clear error when it is not."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is missing or unreadable ({error}): delete it and run again "
                         "(resume=true recomputes its sequence)") from error


def check_flow_sizes(flows, frame_size, sequence: str, flow_cfg) -> None:
    """Every flow must have the frames' size: a flow of another size would be blamed on the
    annotation later."""
    for index, flow in enumerate(flows):
        if flow.shape[:2] != tuple(frame_size):
            where = (f"{flow_cfg.get('root')}/{sequence}/{index:05d}.flo"
                     if flow_cfg.get("name") == "precomputed" else f"flow {index}")
            raise ValueError(f"sequence {sequence!r}: {where} is {flow.shape[1]}x"
                             f"{flow.shape[0]}, the frames are {frame_size[1]}x{frame_size[0]}:"
                             " flows must be computed on the frames at this resolution")


def segment_sequence(cfg: DictConfig, root: Path, sequence: str, folder: Path) -> None:
    """Run the configured method on one DAVIS sequence and write its outputs."""
    import torch

    torch.set_num_threads(1 if int(cfg.num_workers) > 1 else int(cfg.threads))
    frames, annotations = davis.check_sequence(root, sequence, cfg.dataset.resolution)
    if cfg.resume and sequence_done(folder, cfg.method.name, sequence, len(frames)):
        log.info("%s: already written, skipped (resume=true)", sequence)
        return
    show = f"{sequence} flow" if cfg.get("progress", True) and int(cfg.num_workers) == 1 \
        else None
    flows = sequence_flows(davis.FrameSequence(frames), cfg.flow, cfg.dataset.cache_dir,
                           "davis2016", sequence, progress=show)
    check_flow_sizes(flows, davis.read_image(frames[0]).shape[:2], sequence, cfg.flow)
    if cfg.method.name == "nims":
        logits = nims_on_sequence(cfg, frames, annotations, flows, sequence, folder)
    else:
        logits = dominant_motion_on_sequence(cfg, frames, flows, sequence, folder)
    rate = float(np.mean(np.array(logits) > 0)) if logits else float("nan")
    write_json(folder / "classification" / f"{sequence}.json",
               {"logits": logits, "salient_rate": rate})
    log.info("%s: %d frames done", sequence, len(frames))


def earlier_sequences(folder: Path, root: Path, method: str, resolution: str,
                      selected: Sequence[str]) -> List[str]:
    """Sequences outside ``selected`` whose results an earlier run left complete in
    ``folder`` (a resume with a subset keeps them in the summary)."""
    classification = folder / "classification"
    names = sorted(path.name[:-len(".json")] for path in classification.glob("*.json")
                   if not path.name.endswith(".relevance.json")) \
        if classification.is_dir() else []
    return [name for name in names if name not in selected and sequence_done(
        folder, method, name, len(davis.annotation_paths(root, name, resolution)))]


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


def run_davis(cfg: DictConfig, folder: Path, tracker) -> Optional[float]:
    from joblib import Parallel, delayed

    root = davis.resolve_root(cfg.dataset.root)
    sequences = selected_sequences(cfg, root)
    method = cfg.method.name
    if method not in ("nims", "dominant_motion"):
        raise ValueError(f"method must be 'nims' or 'dominant_motion', got {method!r}")
    if method == "nims":
        load_classifier(cfg.checkpoint, expected_task=cfg.task.name)  # fail before any sequence

    def guarded(sequence):
        try:
            segment_sequence(cfg, root, sequence, folder)
            return sequence, None
        except Exception as error:  # reported by name below; the other sequences go on
            return sequence, f"{type(error).__name__}: {error}\n{traceback.format_exc()}"

    with workers_stopped_on_signal():
        jobs = Parallel(n_jobs=int(cfg.num_workers), backend="loky", return_as="generator")(
            delayed(guarded)(sequence) for sequence in sequences)
        outcomes = list(tqdm(jobs, total=len(sequences), desc="sequences",
                             disable=not cfg.get("progress", True)))
    failures = {sequence: message for sequence, message in outcomes if message}
    write_json(folder / "failures.json", failures)
    for sequence, message in failures.items():
        log.error("sequence %s failed: %s", sequence, message.splitlines()[0])
    done = [s for s in sequences if s not in failures]
    if cfg.resume:
        # The sequences an earlier run wrote into this folder stay in the summary.
        done += earlier_sequences(folder, root, method, cfg.dataset.resolution, sequences)
    if not done:
        reasons = "; ".join(f"{s}: {m.splitlines()[0]}" for s, m in failures.items())
        raise RuntimeError(f"every sequence failed ({reasons}); see {folder / 'failures.json'}")

    segmentations = folder / "Segmentations" / "480p"
    per_frame, per_sequence = score_predictions(root, segmentations / method, done,
                                                cfg.dataset.resolution, "0")
    summary = metrics.dataset_summary(per_sequence)
    table_title = (f"{method} on DAVIS-2016 ({len(done)} sequences, flow {cfg.flow.name}"
                   + (f", step 2 {cfg.step2.name})" if method == "nims" else ")"))
    oracle_table = ""
    if method == "nims":
        oracle_frames, oracle_sequence = score_predictions(root, segmentations / "oracle", done,
                                                           cfg.dataset.resolution, "0")
        for row, oracle_row in zip(per_frame, oracle_frames):
            row.update({"oracle_J": oracle_row["J"], "oracle_F": oracle_row["F"]})
        rates = [read_run_json(folder / "classification" / f"{s}.json")["salient_rate"]
                 for s in done]
        diagnostics = [read_run_json(folder / "classification" / f"{s}.relevance.json")
                       for s in done]
        for key in diagnostics[0]:
            summary[key] = nan_mean([d[key] for d in diagnostics])
        oracle = metrics.dataset_summary(oracle_sequence)
        summary.update({"classified_salient": nan_mean(rates),
                        **{f"oracle_{key}": value for key, value in oracle.items()}})
        oracle_table = "\nOracle selection (upper bound of step 2's regions):\n\n" + \
            markdown_table([oracle], ["J&F", "J_mean", "J_recall", "F_mean", "F_recall"]) + \
            "\nRelevance before step 2 (pointing game, share of positive relevance on the " \
            "object, the object's share of the frame):\n\n" + \
            markdown_table([summary], ["relevance_pointing", "relevance_share_inside",
                                       "relevance_object_share", "relevance_flow_correlation",
                                       "classified_salient"])
    rows = sequence_rows(per_sequence)
    write_csv(folder / "per_frame.csv", per_frame)
    write_csv(folder / "per_sequence.csv", rows)
    table = write_summary(folder, summary, table_title) + oracle_table
    atomic_write_text(folder / "summary.md", table)
    write_html_report(folder, table_title, summary, rows, per_frame)
    tracker.summary(summary)
    tracker.table("per_sequence", rows)
    figures = sorted((folder / "figures").glob("*.png"))
    if figures:
        tracker.images("figures", [cv2.imread(str(p))[..., ::-1] for p in figures],
                       [p.stem for p in figures])
    print(table)
    print(markdown_table(rows))
    if failures:
        raise RuntimeError(f"{len(failures)} sequence(s) failed ({', '.join(failures)}): the "
                           f"others' results are in {folder}; details in failures.json")
    return summary["J&F"]


def video_name(video: int) -> str:
    return f"video_{video:04d}"


def write_results(folder: Path, tracker, rows, summary: dict, title: str) -> None:
    """``per_frame.csv``, ``summary.json``, ``summary.md`` and ``report.html`` (one row per
    video) of a run on a synthetic set; the table is printed and the summary logged."""
    write_csv(folder / "per_frame.csv", rows)
    write_json(folder / "summary.json", summary)
    table = f"# {title}\n\n" + markdown_table([summary])
    atomic_write_text(folder / "summary.md", table)
    per_video = []
    for video in sorted({row["video"] for row in rows}):
        own = [row for row in rows if row["video"] == video]
        per_video.append({"Sequence": video_name(video), "frames": len(own),
                          "salient frames": sum(int(row["label"]) for row in own),
                          "J (salient frames)": nan_mean([row["J"] for row in own])})
    write_html_report(folder, title, summary, per_video,
                      [{**row, "sequence": video_name(row["video"])} for row in rows])
    tracker.summary(summary)
    tracker.table("per_video", per_video)
    print(table)


def nan_mean(values) -> float:
    """Mean of the finite values, NaN when there is none (no warning)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]  # JSON null is NaN
    return float(np.mean(finite)) if finite else float("nan")


def others_marked(mask: np.ndarray, arrays, frame: int) -> float:
    """Fraction of the other objects' visible pixels (parallax objects, crowd members) that a
    predicted mask wrongly marks salient; NaN when the frame shows none."""
    if "others" not in arrays:
        return float("nan")
    others = np.asarray(arrays["others"][frame])
    return float((mask & others).sum() / others.sum()) if others.any() else float("nan")


def dominant_motion_on_synthetic(cfg: DictConfig, folder: Path, tracker) -> float:
    """The dominant-motion baseline on a synthetic set: J on the salient objects and the share
    of other (e.g. parallax) objects it marks."""
    from nims.baselines import dominant_motion_mask
    from nims.data.synthetic_sets import SyntheticFrames, build_set

    split = cfg.dataset.get("eval_split", "test")
    test = SyntheticFrames(build_set(cfg.dataset, cfg.flow), split, (8, 8))
    rows = []
    for video in tqdm(sorted(set(test.videos)), desc="videos",
                      disable=not cfg.get("progress", True)):
        arrays = test.video_arrays(video)
        for frame in range(len(arrays["labels"])):
            flow = np.asarray(arrays["flows"][frame], dtype=np.float32)
            mask = dominant_motion_mask(flow, cfg.method.threshold, int(cfg.method.min_region))
            label = int(arrays["labels"][frame])
            rows.append({"video": video, "frame": frame, "label": label,
                         "J": metrics.jaccard(mask, np.asarray(arrays["masks"][frame]))
                         if label else float("nan"),
                         "others_marked_salient": others_marked(mask, arrays, frame)})
    salient = [r["J"] for r in rows if r["label"]]
    summary = {"J_mean_all_salient": float(np.mean(salient)) if salient else 0.0,
               "others_marked_salient": nan_mean([r["others_marked_salient"] for r in rows]),
               "test_frames": len(rows), "salient_frames": len(salient)}
    write_results(folder, tracker, rows, summary,
                  f"Dominant-motion baseline on {cfg.dataset.name} ({split} videos)")
    return summary["J_mean_all_salient"]


def unet_on_synthetic(cfg: DictConfig, folder: Path, tracker) -> float:
    """The supervised U-Net on the test videos of a synthetic set: J over the salient frames,
    and over those where it finds something (its own detection, the analogue of NIMS's
    protocol)."""
    import torch

    from nims.data.synthetic_sets import SyntheticFrames, build_set
    from nims.lrp import to_model_input
    from nims.unet import load_unet

    device = resolve_device(cfg.get("device", "cpu"))
    model = load_unet(cfg.checkpoint, expected_task=cfg.task.name).to(device)
    test = SyntheticFrames(build_set(cfg.dataset, cfg.flow), "test", model.input_size)
    rows = []
    for video in tqdm(sorted(set(test.videos)), desc="videos",
                      disable=not cfg.get("progress", True)):
        arrays = test.video_arrays(video)
        flows = [np.asarray(f, dtype=np.float32) for f in arrays["flows"]]
        with torch.no_grad():
            logits = model(to_model_input(flows, model.input_size).to(device)).cpu().numpy()
        for frame, (flow, logit) in enumerate(zip(flows, logits)):
            mask = cv2.resize((logit > 0).astype(np.uint8), flow.shape[1::-1],
                              interpolation=cv2.INTER_NEAREST).astype(bool)
            truth = np.asarray(arrays["masks"][frame])
            label = int(arrays["labels"][frame])
            rows.append({"video": video, "frame": frame, "label": label,
                         "detected": bool(mask.any()),
                         "J": metrics.jaccard(mask, truth) if label else float("nan")})
    salient = [r["J"] for r in rows if r["label"]]
    detected = [r["J"] for r in rows if r["label"] and r["detected"]]
    summary = {"J_mean_all_salient": float(np.mean(salient)) if salient else 0.0,
               "J_mean_detected_salient": float(np.mean(detected)) if detected else 0.0,
               "test_frames": len(rows), "salient_frames": len(salient)}
    write_results(folder, tracker, rows, summary,
                  f"Supervised U-Net on {cfg.dataset.name} (test videos)")
    return summary["J_mean_all_salient"]


def run_synthetic(cfg: DictConfig, folder: Path, tracker) -> Optional[float]:
    """Classifier and NIMS on the test videos of a synthetic task set."""
    from nims.data.synthetic_sets import build_set, SyntheticFrames
    from nims.pipeline import run_frames
    from nims.objectives import classification_metrics

    model = task_classifier(cfg)
    split = cfg.dataset.get("eval_split", "test")
    test = SyntheticFrames(build_set(cfg.dataset, cfg.flow), split, model.input_size)
    rows, labels, logits = [], [], []
    for video in tqdm(sorted(set(test.videos)), desc="videos",
                      disable=not cfg.get("progress", True)):
        arrays = test.video_arrays(video)
        flows = [np.asarray(f, dtype=np.float32) for f in arrays["flows"]]
        drawn = report_frames(0, len(flows) - 1, int(cfg.get("report_frames", 4)))
        for frame, result in enumerate(run_frames(model, flows, cfg)):
            truth = np.asarray(arrays["masks"][frame])
            label = int(arrays["labels"][frame])
            if frame in drawn:
                write_strip(folder, video_name(video), frame, np.asarray(arrays["frames"][frame]),
                            flows[frame], result, truth)
            labels.append(label)
            logits.append(result.logit)
            rows.append({"video": video, "frame": frame, "label": label, "logit": result.logit,
                         "relevance_flow_correlation": relevance_flow_correlation(
                             result.relevance, flows[frame]),
                         **relevance_quality(result.relevance, truth),
                         "J": metrics.jaccard(result.mask, truth) if label else float("nan"),
                         "oracle_J": metrics.jaccard(oracle_mask(result.segmentation, truth),
                                                     truth) if label else float("nan"),
                         "others_marked_salient": others_marked(result.mask, arrays, frame)})
    summary = {f"frame_{k}": v for k, v in classification_metrics(np.array(labels),
                                                                  np.array(logits)).items()}
    detected = [r["J"] for r in rows if r["label"] and r["logit"] > 0]
    salient = [r["J"] for r in rows if r["label"]]
    summary.update({"J_mean_detected_salient": float(np.mean(detected)) if detected else 0.0,
                    "J_mean_all_salient": float(np.mean(salient)) if salient else 0.0,
                    "oracle_J_mean_all_salient": float(np.nanmean([r["oracle_J"] for r in rows]))
                    if salient else 0.0,
                    "relevance_flow_correlation": float(np.nanmean(
                        [r["relevance_flow_correlation"] for r in rows])),
                    **mean_quality(rows),
                    "others_marked_salient": nan_mean([r["others_marked_salient"] for r in rows]),
                    "test_frames": len(rows), "salient_frames": len(salient)})
    write_results(folder, tracker, rows, summary, f"NIMS on {cfg.dataset.name} ({split} videos)")
    return summary["J_mean_detected_salient"]


def run_video(cfg: DictConfig, folder: Path, tracker) -> None:
    """NIMS on any video or frame folder: maps, masks, an overlay video and a contact sheet."""
    from nims.data.video import read_frames
    from nims.figures import overlay
    from nims.visualize import side_by_side, write_png

    model = task_classifier(cfg)
    source = Path(str(cfg.dataset.input))
    frames = list(read_frames(source, cfg.dataset.max_frames, int(cfg.dataset.step)))
    show = "flow" if cfg.get("progress", True) else None
    flows = sequence_flows(frames, cfg.flow, cfg.dataset.cache_dir, "video",
                           f"{source.stem}-step{cfg.dataset.step}", progress=show)
    results = sequence_results(model, flows, cfg, len(frames),
                               progress="NIMS" if show else None)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(folder / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (2 * width, height))
    for index, (frame, result) in enumerate(zip(frames, results)):
        _write_mask(folder / "masks" / f"{index:05d}.png", result.mask)
        _write_saliency(folder / "saliency" / f"{index:05d}.png", result.saliency)
        heat = cv2.applyColorMap((255 * result.saliency).astype(np.uint8), cv2.COLORMAP_MAGMA)
        writer.write(np.hstack([cv2.cvtColor(overlay(frame, result.mask), cv2.COLOR_RGB2BGR),
                                heat]))
    writer.release()
    chosen = np.linspace(0, len(flows) - 1, min(4, len(flows))).round().astype(int)
    sheet = np.vstack([side_by_side([overlay(frames[i], results[i].mask),
                                     (255 * results[i].saliency).astype(np.uint8)], height=180,
                                    titles=[f"frame {i}: mask (logit {results[i].logit:.2f})",
                                            f"frame {i}: saliency (0-1)"])
                       for i in chosen])
    write_png(folder / "contact_sheet.png", sheet)
    logits = np.array([r.logit for r in results[:-1]])
    summary = {"frames": len(frames), "classified_salient": float(np.mean(logits > 0)),
               "mean_salient_area": float(np.mean([r.mask.mean() for r in results]))}
    write_json(folder / "summary.json", summary)
    nothing = np.zeros(frames[0].shape[:2], dtype=bool)  # a video has no ground truth
    for index in chosen:
        write_strip(folder, source.stem, index, frames[index], flows[index], results[index],
                    nothing)
    write_html_report(folder, f"NIMS on {source.name}", summary,
                      [{"Sequence": source.stem, **summary}],
                      [{"sequence": source.stem, "frame": index, "logit": result.logit}
                       for index, result in enumerate(results)])
    tracker.summary(summary)
    print(f"{len(frames)} frames of {source}: maps, masks, overlay.mp4, contact_sheet.png and "
          f"report.html in {folder}")


def output_folder(cfg: DictConfig) -> Path:
    """Where this run writes: the folder ``resume=<folder>`` names, else the job's own."""
    return resumed_folder(cfg) or run_dir(cfg)


@announce_run_folder(folder_of=output_folder)
def run(cfg: DictConfig) -> Optional[float]:
    """Entry point of ``evaluate.py``; returns the headline score (what a sweeper reads)."""
    require_positive_ints(cfg, ("num_workers", "threads", "batch_size"))
    resolve_device(cfg.get("device", "cpu"))  # a device that is not there fails first
    folder = output_folder(cfg)
    if cfg.get("resume"):
        check_resume_config(cfg, folder)
    write_resolved_config(cfg, folder)
    return _run_in(cfg, folder)


def resumed_folder(cfg: DictConfig) -> Optional[Path]:
    """The run folder ``resume=<folder>`` names (None for ``resume=false|true``: ``true``
    continues in this job's own folder, e.g. with ``hydra.run.dir=<old run>``)."""
    resume = cfg.get("resume")
    if isinstance(resume, bool) or resume is None or str(resume).lower() in ("true", "false"):
        return None
    folder = Path(str(resume))
    if not (folder / "config.yaml").is_file():
        raise FileNotFoundError(f"resume={folder}: not a run folder of evaluate.py (no "
                                "config.yaml); give the folder a run printed as its run folder")
    return folder


# Keys that change how a run is carried out, not what it computes: a resume may change them.
RESUME_FREE_KEYS = ("resume", "num_workers", "threads", "progress", "figures", "report_frames",
                    "batch_size", "device", "logger", "dataset.sequences")


def _flatten(node, prefix: str = "") -> Dict[str, object]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def check_resume_config(cfg: DictConfig, folder: Path) -> None:
    """Refuse ``resume=true`` into a run folder whose ``config.yaml`` computes something else:
    the skipped sequences would keep the old config's results under the new config's name."""
    from omegaconf import OmegaConf

    from nims.report import resolved_config

    saved_path = folder / "config.yaml"
    if not saved_path.is_file():
        return
    saved = _flatten(OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True))
    current = _flatten(resolved_config(cfg))
    differing = sorted(key for key in set(saved) | set(current)
                       if saved.get(key) != current.get(key)
                       and not any(key == free or key.startswith(free + ".")
                                   for free in RESUME_FREE_KEYS))
    if differing:
        shown = ", ".join(f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
                          for key in differing[:8])
        raise ValueError(f"resume=true into {folder}, made with another config ({shown}"
                         f"{', ...' if len(differing) > 8 else ''}): use the same settings "
                         "or a new run folder")


def _run_in(cfg: DictConfig, folder: Path) -> Optional[float]:
    """The evaluation ``cfg`` asks for, written to ``folder``."""
    with tracking_run(cfg, "eval", folder) as tracker:
        if cfg.get("predictions"):
            return score_folder(cfg, folder, tracker)
        if cfg.dataset.name == "davis2016":
            return run_davis(cfg, folder, tracker)
        if cfg.dataset.name in ("crowd_synth", "independent_synth", "parallax_synth"):
            if cfg.method.name == "unet":
                return unet_on_synthetic(cfg, folder, tracker)
            if cfg.method.name == "dominant_motion":
                return dominant_motion_on_synthetic(cfg, folder, tracker)
            return run_synthetic(cfg, folder, tracker)
        if cfg.dataset.name == "video":
            return run_video(cfg, folder, tracker)
        raise ValueError(f"evaluate.py does not know dataset={cfg.dataset.name}")


def score_folder(cfg: DictConfig, folder: Path, tracker) -> float:
    """Score ``predictions=<dir>`` on DAVIS with the official protocol."""
    root = davis.resolve_root(cfg.dataset.root)
    sequences = selected_sequences(cfg, root)
    per_frame, per_sequence = score_predictions(root, Path(cfg.predictions), sequences,
                                                cfg.dataset.resolution,
                                                cfg.predictions_first_index)
    rows = sequence_rows(per_sequence)
    write_csv(folder / "per_frame.csv", per_frame)
    write_csv(folder / "per_sequence.csv", rows)
    summary = metrics.dataset_summary(per_sequence)
    title = f"DAVIS-2016 {', '.join(sequences)}: {Path(cfg.predictions).name}"
    table = write_summary(folder, summary, title)
    write_html_report(folder, title, summary, rows, per_frame)
    tracker.summary(summary)
    tracker.table("per_sequence", rows)
    print(table)
    log.info("results in %s", folder)
    return summary["J&F"]
