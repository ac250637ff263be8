"""The DAVIS-2016 protocol's bookkeeping: which sequences a run evaluates, that flows fit the
frames, per-sequence statistics in the toolkit's names, and the summary of a method with a
classifier (oracle, relevance diagnostic)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from nims import metrics
from nims.benchmarks import nan_mean
from nims.data import davis
from nims.report import markdown_table

log = logging.getLogger(__name__)


def selected_sequences(cfg: DictConfig, root: Path) -> list[str]:
    """``dataset.sequences`` when given, else the sequences of ``dataset.split`` present under
    ``root``: a partial copy of DAVIS evaluates what it holds and names what it lacks in one
    line (``dataset.strict=true`` makes a missing sequence an error)."""
    images = root / "JPEGImages" / cfg.dataset.resolution
    if cfg.get("predictions") and not images.is_dir():
        images = root / "Annotations" / cfg.dataset.resolution  # saved masks need no frames
    listed = cfg.dataset.get("sequences")
    if listed is not None:
        # dataset.sequences=libby (no brackets) names one sequence, as [libby] does.
        names = [str(listed)] if isinstance(listed, (str, int)) else [str(n) for n in listed]
        if not names:
            raise ValueError(
                "dataset.sequences=[] lists no sequence: list some (dataset.sequences=[libby]) "
                f"or leave it unset to evaluate the {cfg.dataset.split} split"
            )
        available = (
            sorted(p.name for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
        )
        for name in names:
            # A name is a folder of the dataset, never a path: "../x" would read and write
            # outside the dataset and the run folder.
            if name not in available:
                raise FileNotFoundError(
                    f"dataset.sequences: {name!r} is not a sequence folder of {images} "
                    f"(available: {', '.join(available) or 'none'})"
                )
        return names
    names = davis.split_sequences(root, cfg.dataset.split, cfg.dataset.resolution)
    present = [name for name in names if (images / name).is_dir()]
    missing = [name for name in names if name not in present]
    if missing and (cfg.dataset.get("strict", False) or not present):
        raise FileNotFoundError(
            f"{len(missing)} of the {len(names)} {cfg.dataset.split} "
            f"sequences are missing under {images} ({', '.join(missing)}): "
            "complete the copy or list dataset.sequences"
            + (", or set dataset.strict=false" if present else "")
        )
    if missing:
        log.warning(
            "%d of the %d %s sequences are not under %s and are skipped (%s); "
            "dataset.strict=true makes this an error",
            len(missing),
            len(names),
            cfg.dataset.split,
            images,
            ", ".join(missing),
        )
    return present


def sequence_rows(per_sequence: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, object]]:
    """Flatten per-sequence statistics into rows with the DAVIS toolkit's column names
    (``Sequence``, ``J-Mean``, ``J-Recall``, ``J-Decay``, ``F-Mean``, ...)."""
    return [
        {
            "Sequence": name,
            **{
                f"{measure}-{statistic.capitalize()}": value
                for measure, stats in result.items()
                for statistic, value in stats.items()
            },
        }
        for name, result in per_sequence.items()
    ]


def check_flow_sizes(flows, frame_size, sequence: str, flow_cfg) -> None:
    """Every flow must have the frames' size: a flow of another size would be blamed on the
    annotation later."""
    for index, flow in enumerate(flows):
        if flow.shape[:2] != tuple(frame_size):
            where = (
                f"{flow_cfg.get('root')}/{sequence}/{index:05d}.flo"
                if flow_cfg.get("name") == "precomputed"
                else f"flow {index}"
            )
            raise ValueError(
                f"sequence {sequence!r}: {where} is {flow.shape[1]}x"
                f"{flow.shape[0]}, the frames are {frame_size[1]}x{frame_size[0]}:"
                " flows must be computed on the frames at this resolution"
            )


def sequence_statistics(
    jaccards: list[float], boundaries: list[float]
) -> dict[str, dict[str, float]]:
    """The protocol's per-sequence statistics of per-frame J and F."""
    return {
        "J": metrics.sequence_statistics(jaccards),
        "F": metrics.sequence_statistics(boundaries),
    }


def classifier_summary(scores: dict[str, dict], summary: dict, oracle_sequence: dict) -> str:
    """Add the oracle's statistics, the relevance diagnostic, the rate of frames classified
    salient and the rate of frames whose flow showed parallax (their candidate regions made by
    ``step2.parallax_step``) to ``summary``; return their Markdown tables."""
    diagnostics = [score["relevance"] for score in scores.values()]
    for key in diagnostics[0]:
        summary[key] = nan_mean([d[key] for d in diagnostics])
    oracle = metrics.dataset_summary(oracle_sequence)
    summary["classified_salient"] = nan_mean([score["salient_rate"] for score in scores.values()])
    summary["parallax_step_frames"] = nan_mean(
        [score.get("parallax_step_rate", float("nan")) for score in scores.values()]
    )
    summary.update({f"oracle_{key}": value for key, value in oracle.items()})
    relevance_columns = [
        "relevance_pointing",
        "relevance_share_inside",
        "relevance_object_share",
        "relevance_flow_correlation",
        "classified_salient",
        "parallax_step_frames",
    ]
    return (
        "\nOracle selection (upper bound of step 2's regions):\n\n"
        + markdown_table([oracle], ["J&F", "J_mean", "J_recall", "F_mean", "F_recall"])
        + "\nRelevance before step 2 (pointing game, share of positive relevance on the object, "
        "the object's share of the frame):\n\n" + markdown_table([summary], relevance_columns)
    )
