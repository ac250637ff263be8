"""``method=nims``: NIMS on a sequence: flow -> classifier -> attribution -> step 2 -> R_sal ->
saliency map.

One function per level, so that a frame's path reads top to bottom: :class:`Nims` (the method a
benchmark calls) loads the task classifier and hands a sequence's flows to
:func:`sequence_results`; :func:`run_frames` batches them through the classifier and the
attribution (step 1, :mod:`nims.attribution`), decides per frame (the ``decision`` group), and
:func:`nims_frame` runs step 2 (:mod:`nims.step2`) and the saliency map
(:mod:`nims.saliency`) frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from nims.attribution import at_flow_resolution, attribute_flows, decision_logits
from nims.attribution.base import scaled_input_size
from nims.device import resolve_device
from nims.frame_threads import map_frames
from nims.methods.base import METHODS, FrameResult
from nims.model import MotionClassifier, load_classifier
from nims.report import bars_off
from nims.saliency import saliency_map
from nims.step2 import Segmentation, segment


def task_classifier(cfg: DictConfig) -> MotionClassifier:
    """The classifier ``checkpoint`` names, checked against ``task`` and, when the config
    names a ``model`` (``experiment=paper_*``: the paper's flattened head), against its head;
    on ``device``."""
    model = load_classifier(cfg.checkpoint, expected_task=cfg.task.name)
    wanted = (cfg.get("model") or {}).get("head")
    if wanted is not None and model.head != wanted:
        raise ValueError(
            f"model.head={wanted} (the experiment's classifier) but checkpoint {cfg.checkpoint} "
            f"has head {model.head!r}: give a checkpoint trained with model.head={wanted}"
        )
    return model.to(resolve_device(cfg.get("device", "cpu")))


@METHODS.register("nims")
class Nims:
    """NIMS: step 1 relevance of the task classifier, step 2 regions, saliency map."""

    title = "NIMS"
    classifies = True  # results carry the classifier's logit, relevance and step 2 regions

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.model = task_classifier(cfg)
        self.input_size = self.model.input_size
        for scale, _ in decision_scales(cfg.get("decision") or {}):  # before any frame is read
            scaled_input_size(self.model, scale)

    def predict(self, data, progress: str | None = None) -> list[FrameResult]:
        return sequence_results(self.model, data.flows, self.cfg, data.n_frames, progress)


def run_frames(
    model: MotionClassifier,
    flows: Sequence[np.ndarray],
    cfg,
    batch_size: int = 16,
    progress: str | None = None,
) -> list[FrameResult]:
    """NIMS on the flow fields ``(H, W, 2)`` (pixels) of one sequence, in frame order: one
    result per flow.

    ``cfg`` provides ``attribution``, ``decision`` (``flips``, ``window``, ``scales``,
    ``offsets``; absent: one pass at the classifier's size, each frame alone, see
    :func:`decision_scales`), ``step2`` and ``saliency`` (``lam``, ``mask_threshold``,
    optionally ``gate``).
    Step 1 runs on every frame first, so that each frame's decision can read its neighbours'
    logits. ``progress``: the label of a progress bar over the frames (none when None).
    """
    from tqdm import tqdm

    threshold = float(cfg.saliency.mask_threshold)
    if not 0 <= threshold < 1:
        raise ValueError(
            f"saliency.mask_threshold must be in [0, 1) (phi lies in [0, 1)), got "
            f"{threshold}: every mask would be empty"
        )
    if not len(flows):
        return []
    decision = cfg.get("decision") or {}
    # Per scale the classifier reads the flow at: each frame's relevance and decision logits.
    relevance, decisions = [], []
    for scale, offset in decision_scales(decision):
        # Only the channel-summed relevance and the logits are kept: a long video's per-channel
        # relevance would double what the whole sequence holds in memory.
        batches = []
        for start in range(0, len(flows), batch_size):
            batch = flows[start : start + batch_size]
            attribution = attribute_flows(
                model, batch, cfg.attribution, decision.get("flips", 1), scale
            )
            batches.append((attribution.relevance, attribution.logits.detach()))
        relevance.append(torch.cat([maps for maps, _ in batches]))
        logits = torch.cat([batch_logits for _, batch_logits in batches]).numpy()
        decisions.append(decision_logits(logits - offset, decision.get("window", 1)))
    # Each frame is decided, and interpreted, at the scale where the classifier is surest.
    chosen = np.argmax(decisions, axis=0)

    def frame(index: int) -> FrameResult:
        flow, scale = flows[index], chosen[index]
        return nims_frame(
            flow,
            at_flow_resolution(relevance[scale][index], flow.shape),
            decisions[scale][index],
            cfg,
        )

    return list(
        tqdm(
            map_frames(frame, range(len(flows))),
            total=len(flows),
            desc=progress,
            unit="frame",
            leave=False,
            disable=bars_off(progress is not None),
        )
    )


def decision_scales(decision) -> list[tuple[float, float]]:
    """``(scale, offset)`` pairs of a ``decision`` config node: the classifier reads the flow at
    ``scale`` times its input size, and its logit there, minus ``offset``, is the scale's
    decision (``decision.scales``, ``decision.offsets``; absent: ``[1.0]`` and no offset, the
    paper's one reading).

    A walker a few pixels tall at the classifier's input is seen at twice that size, where the
    classifier's logits also run higher on quiet frames: the offset, set on the training
    generator's validation videos, keeps its frame accuracy within a point of one reading
    (``conf/decision/two_scales.yaml``).
    """
    scales = [float(value) for value in decision.get("scales", [1.0])]
    offsets = [float(value) for value in decision.get("offsets", [0.0] * len(scales))]
    if not scales or len(offsets) != len(scales):
        raise ValueError(
            f"decision.scales ({scales}) and decision.offsets ({offsets}) need one value each "
            "per scale, at least one"
        )
    return list(zip(scales, offsets, strict=True))


def nims_frame(flow: np.ndarray, relevance: np.ndarray, logit: float, cfg) -> FrameResult:
    """Step 2 and the saliency map of one frame whose relevance is known.

    With ``cfg.saliency.gate`` a frame the classifier calls non-salient (logit <= 0) gets an
    empty R_sal, hence a zero saliency map and an empty mask; its candidate regions are kept
    (the oracle still reads them). A NaN logit (a method without a classifier) never gates.
    """
    segmentation = segment(flow, relevance, cfg.step2)
    if cfg.saliency.get("gate", False) and logit <= 0:
        segmentation.salient_labels = np.zeros(0, dtype=np.int64)
        segmentation.salient_mask = np.zeros_like(segmentation.salient_mask)
    initial = segmentation.layer_motions[0] if segmentation.layer_motions else None
    saliency = saliency_map(
        flow, segmentation.salient_mask, lam=float(cfg.saliency.lam), initial=initial
    ).saliency
    mask = segmentation.salient_mask & (saliency > float(cfg.saliency.mask_threshold))
    return FrameResult(float(logit), relevance, segmentation, saliency, mask)


def empty_result(shape) -> FrameResult:
    """The result of a frame without flow (a sequence's last frame): nothing salient."""
    zeros = np.zeros(shape, dtype=np.float32)
    empty = np.zeros(shape, dtype=bool)
    labels = np.zeros(shape, dtype=np.int32)
    return FrameResult(
        float("nan"),
        zeros,
        Segmentation(labels, np.full(1, np.nan), np.zeros(0, dtype=np.int64), empty),
        zeros,
        empty,
    )


def sequence_results(
    model: MotionClassifier,
    flows: Sequence[np.ndarray],
    cfg,
    n_frames: int | None = None,
    progress: str | None = None,
) -> list[FrameResult]:
    """Results for every frame of a sequence of ``n_frames`` frames from its ``n_frames - 1``
    forward flows: the last frame has no forward flow and gets :func:`empty_result` (the DAVIS
    protocol does not score last frames). ``progress`` as in :func:`run_frames`."""
    results = run_frames(model, flows, cfg, int(cfg.get("batch_size", 16)), progress)
    n_frames = len(flows) + 1 if n_frames is None else n_frames
    results += [empty_result(flows[0].shape[:2])] * (n_frames - len(flows))
    return results
