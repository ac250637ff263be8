"""What each trainable model learns from, for the one training loop of :mod:`nims.train`.

An objective owns a model kind's data, network, loss, batch summaries, metrics and the
validation score that picks ``best.pt``; the loop owns epochs, the optimiser, checkpoints,
resuming, logging and the test pass. ``model=classifier`` trains :class:`FrameClassification`
(frame labels only, BCE on the "salient" logit, best by val AP); ``model=unet`` trains
:class:`MaskSegmentation` (the supervised baseline, BCE on pixels weighted by the salient
pixels' rarity, its decision logit calibrated on val, best by val J over the salient frames).
Adding a model kind is one class here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from nims.frame_scores import classification_metrics, mask_overlaps, mean_jaccard
from nims.model import build_model, sides_times
from nims.synthetic.frames import MaskedFrames, build_synthetic_frames
from nims.synthetic.scenes import build_scenes
from nims.synthetic.sets import GENERATORS

log = logging.getLogger(__name__)


DECISION_LOGITS = np.arange(-2.0, 10.01, 0.25)
"""The U-Net decision logits searched on the validation split (see :class:`MaskSegmentation`)."""


def flip_augment(flows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips of a ``(B, C, H, W)`` batch whose channels 0-1 are
    a flow ``(u, v)``; further channels (a mask) are flipped with it.

    Mirroring the image mirrors the motion: a horizontal flip negates ``u``, a vertical one
    ``v``. Whether a frame holds salient motion does not change.
    """
    flows = flows.clone()
    for axis, channel in ((3, 0), (2, 1)):
        chosen = (torch.rand(len(flows), generator=generator) < 0.5).to(flows.device)
        if chosen.any():
            flipped = flows[chosen].flip(axis)
            flipped[:, channel] *= -1
            flows[chosen] = flipped
    return flows


def random_crops(batch: torch.Tensor, size, generator: torch.Generator) -> torch.Tensor:
    """One random ``size = (h, w)`` window per sample of a ``(B, C, H, W)`` batch (flow and
    mask channels cropped together): the U-Net, fully convolutional, is trained on crops of
    the flow at ``model.input_size`` and then reads whole frames."""
    height, width = (int(side) for side in size)
    if height > batch.shape[2] or width > batch.shape[3]:
        raise ValueError(
            f"model.train_crop {[height, width]} is larger than model.input_size "
            f"{list(batch.shape[2:])}"
        )
    tops = torch.randint(0, batch.shape[2] - height + 1, (len(batch),), generator=generator)
    lefts = torch.randint(0, batch.shape[3] - width + 1, (len(batch),), generator=generator)
    return torch.stack(
        [
            sample[:, top : top + height, left : left + width]
            for sample, top, left in zip(batch, tops.tolist(), lefts.tolist(), strict=True)
        ]
    )


def rescaled(flows: torch.Tensor, factor: float) -> torch.Tensor:
    """A ``(B, 2, H, W)`` flow batch (pixels) resized by ``factor``, each side rounded to a
    multiple of 8 (at least 8), its vectors rescaled to the new pixels (as
    :func:`nims.flow.resize_flow`: area averaging when shrinking, bilinear otherwise)."""
    height, width = flows.shape[2:]
    size = sides_times((height, width), factor)
    if size == (height, width):
        return flows
    mode = "area" if size[0] * size[1] < height * width else "bilinear"
    resized = F.interpolate(
        flows, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False})
    )
    gains = torch.tensor([size[1] / width, size[0] / height], dtype=flows.dtype)
    return resized * gains.to(flows.device)[None, :, None, None]


def scale_augment(flows: torch.Tensor, scales, generator: torch.Generator) -> torch.Tensor:
    """The batch :func:`rescaled` by one factor drawn uniformly in ``scales = [low, high]``
    (``trainer.scales``): a fully convolutional classifier then sees the same motions at
    several sizes, the walkers of a crowd as small or as large as another video's."""
    low, high = (float(value) for value in scales)
    factor = low + (high - low) * float(torch.rand(1, generator=generator))
    return rescaled(flows, factor)


def check_scales(scales, head: str) -> None:
    """Refuse a ``trainer.scales`` that is not ``[low, high]`` with ``0 < low <= high``, or
    one given to a classifier whose head needs one input size."""
    if scales is None:
        return
    values = list(scales)
    if len(values) != 2 or not 0 < float(values[0]) <= float(values[1]):
        raise ValueError(
            f"trainer.scales must be null or [low, high] with 0 < low <= high, got {values}"
        )
    if head == "fc":
        raise ValueError(
            "trainer.scales resizes the training batches, but model.head=fc reads a map of "
            "one size: use model.head=max or mean, or trainer.scales=null"
        )


@torch.no_grad()
def flow_bounds(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel min and max of the training flows (LRP's ``bounds=dataset``)."""
    low = torch.full((2,), float("inf"))
    high = torch.full((2,), float("-inf"))
    for flows, _ in loader:
        low = torch.minimum(low, flows.amin(dim=(0, 2, 3)))
        high = torch.maximum(high, flows.amax(dim=(0, 2, 3)))
    return low, high


class FrameClassification:
    """The frame classifier: is there salient motion in this frame?"""

    score_key = "val_average_precision"
    fallback_key = "val_accuracy"  # a validation split with one class has no AP

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.loss = nn.BCEWithLogitsLoss()

    def datasets(self) -> dict[str, Dataset]:
        """Train / val / test splits of the configured dataset, as (flow, label) datasets."""
        cfg = self.cfg
        if cfg.dataset.name == "synthetic_scenes":
            splits = build_scenes(cfg.dataset, cfg.model.input_size)
        elif cfg.dataset.name == "davis_camera":
            from nims.data.camera_pairs import build_camera_pairs

            splits = build_camera_pairs(
                cfg.dataset, cfg.flow, cfg.model.input_size, progress=bool(cfg.progress)
            )
        elif cfg.dataset.name in GENERATORS:
            splits = build_synthetic_frames(
                cfg.dataset, cfg.flow, cfg.model.input_size, progress=bool(cfg.progress)
            )
        else:
            raise ValueError(
                f"dataset={cfg.dataset.name} cannot train a classifier: it has no "
                "frame labels; use crowd_synth, independent_synth, synthetic_scenes or "
                "davis_camera"
            )
        for split, data in splits.items():
            classes = {bool(label) for label in data.labels}
            held = (
                f"only {'salient' if True in classes else 'non-salient'} frames"
                if classes
                else "no frame"
            )
            # An empty split fails after every epoch; a one-class training split teaches nothing.
            if not classes or (split == "train" and len(classes) == 1):
                raise ValueError(
                    f"the {split} split of dataset={cfg.dataset.name} holds {held} "
                    f"({len(data)} frames): raise dataset.videos (each split needs salient and "
                    "non-salient videos) or bring dataset.salient_fraction nearer 0.5"
                )
            if len(classes) == 1:
                log.warning(
                    "the %s split of dataset=%s holds %s: it has no AP, so %s; raise "
                    "dataset.videos for both classes",
                    split,
                    cfg.dataset.name,
                    held,
                    "best.pt is chosen by validation accuracy"
                    if split == "val"
                    else "its AP is reported as undefined",
                )
        return splits

    def model(self) -> nn.Module:
        check_scales(self.cfg.trainer.get("scales"), self.cfg.model.get("head", "fc"))
        return build_model(self.cfg.model, self.cfg.task)

    def prepare(self, model: nn.Module, loaders: dict[str, DataLoader], device) -> None:
        """LRP's input bounds from the training flows, unless a checkpoint brought them."""
        if not torch.isfinite(model.input_low).all():
            low, high = flow_bounds(loaders["train"])
            model.input_low, model.input_high = low.to(device), high.to(device)

    def augment(self, flows: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Random mirror images, then (``trainer.scales``) one random size for the batch."""
        flows = flip_augment(flows, generator)
        scales = self.cfg.trainer.get("scales")
        return (scale_augment(flows, scales, generator) if scales else flows), labels

    def calibrate(self, model: nn.Module, validated: dict[str, float]) -> None:
        """Nothing to calibrate: the classifier decides at logit 0 (its probability 0.5)."""

    def summarise(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, ...]:
        return labels.cpu().numpy(), logits.detach().cpu().numpy()

    def metrics(self, summaries: list[tuple[np.ndarray, ...]]) -> dict[str, float]:
        labels, logits = (np.concatenate(part) for part in zip(*summaries, strict=True))
        return classification_metrics(labels, logits)

    def finish(
        self,
        model: nn.Module,
        datasets: dict[str, Dataset],
        folder: Path,
        tracker,
        test: dict[str, float],
        best: float,
    ) -> str:
        """``relevance.png`` (LRP of a few salient test frames); the closing line."""
        from nims.figures import relevance_figure
        from nims.visualize import write_png

        figure = relevance_figure(model.cpu(), datasets["test"], self.cfg.attribution)
        write_png(folder / "relevance.png", figure)
        tracker.images("relevance", [figure], ["flow | relevance, salient test frames"])
        one_class = len({bool(label) for label in datasets["val"].labels}) == 1
        measure = "accuracy (one-class val split: no AP)" if one_class else "AP"
        return (
            f"best val {measure} {best:.3f}; test accuracy {test['test_accuracy']:.3f}, "
            f"AP {test['test_average_precision']:.3f}"
        )


class MaskSegmentation:
    """The supervised U-Net: which pixels are salient? (the crowd experiment's gold standard)"""

    score_key = "val_J_calibrated"
    fallback_key = None  # no salient validation frame: the score is 0

    def __init__(self, cfg: DictConfig):
        if cfg.dataset.name not in GENERATORS:
            raise ValueError(
                f"model=unet trains on masks: use dataset=crowd_synth or "
                f"independent_synth, not {cfg.dataset.name}"
            )
        self.cfg = cfg
        self.loss = None  # weighted by the training masks' coverage, in prepare
        self.network = None  # the U-Net being trained (its decision logit), from prepare

    def datasets(self) -> dict[str, Dataset]:
        cfg = self.cfg
        frames = build_synthetic_frames(
            cfg.dataset, cfg.flow, cfg.model.input_size, progress=bool(cfg.progress)
        )
        return {split: MaskedFrames(data) for split, data in frames.items()}

    def model(self) -> nn.Module:
        from nims.unet import UNet

        return UNet(self.cfg.model.input_size, self.cfg.model.channels)

    def prepare(self, model: nn.Module, loaders: dict[str, DataLoader], device) -> None:
        # Salient pixels are rare (about 0.5% of a crowd frame): weigh them by the inverse of
        # their share in the training masks, or the U-Net learns to predict nothing.
        frames = loaders["train"].dataset.frames
        coverage = float(np.mean([frames.mask(i).mean().item() for i in range(0, len(frames), 4)]))
        weight = float(np.clip((1 - coverage) / max(coverage, 1e-6), 1.0, 200.0))
        log.info(
            "salient pixels: %.4f of the training frames; positive weight %.1f", coverage, weight
        )
        self.loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, device=device))
        self.network = model

    def augment(self, flows: torch.Tensor, masks: torch.Tensor, generator: torch.Generator):
        both = flip_augment(torch.cat([flows, masks[:, None]], 1), generator)
        crop = self.cfg.model.get("train_crop")
        if crop:
            both = random_crops(both, crop, generator)
        return both[:, :2], both[:, 2]

    def summarise(self, logits: torch.Tensor, masks: torch.Tensor) -> tuple[np.ndarray, ...]:
        """Overlaps of the salient frames at every searched logit, then at the model's own."""
        salient = masks.flatten(1).amax(1) > 0
        thresholds = np.append(DECISION_LOGITS, float(self.network.decision_logit))
        return mask_overlaps(logits[salient], masks[salient].to(logits.device), thresholds)

    def metrics(self, summaries: list[tuple[np.ndarray, ...]]) -> dict[str, float]:
        """``J_mean_salient`` at the model's decision logit; ``J_calibrated`` at the best
        searched logit, ``decision_logit``."""
        intersections, unions = (np.concatenate(part) for part in zip(*summaries, strict=True))
        if not len(intersections):
            return {k: float("nan") for k in ("J_mean_salient", "J_calibrated", "decision_logit")}
        jaccard = mean_jaccard(intersections, unions)
        best = int(np.argmax(jaccard[:-1]))
        return {
            "J_mean_salient": float(jaccard[-1]),
            "J_calibrated": float(jaccard[best]),
            "decision_logit": float(DECISION_LOGITS[best]),
        }

    def calibrate(self, model: nn.Module, validated: dict[str, float]) -> None:
        """Set the decision logit to the one that gives the best validation J: the weighted
        loss trades precision for recall (its logit 0 is a salient posterior of about
        ``1 / (1 + pos_weight)``), so logit 0 over-segments; the test pass and evaluation
        then use the logit chosen here, saved with the weights."""
        if np.isfinite(validated["decision_logit"]):
            model.decision_logit.fill_(validated["decision_logit"])

    def finish(
        self,
        model: nn.Module,
        datasets: dict[str, Dataset],
        folder: Path,
        tracker,
        test: dict[str, float],
        best: float,
    ) -> str:
        return (
            f"U-Net: best val J {best:.3f} (decision logit {float(model.decision_logit):.2f}); "
            f"test J over salient frames {test['test_J_mean_salient']:.3f}"
        )


OBJECTIVES = {"classifier": FrameClassification, "unet": MaskSegmentation}


def objective_for(cfg: DictConfig):
    """The objective ``model.name`` trains."""
    name = str(cfg.model.name)
    if name not in OBJECTIVES:
        raise ValueError(f"model={name} has no training objective; available: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name](cfg)
