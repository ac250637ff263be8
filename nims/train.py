"""``python train.py task=...``: train the frame classifier on frame-level labels.

BCE on the "salient" logit, AdamW, seeded and deterministic on the CPU. Splits are by video.
Every epoch logs loss, accuracy, average precision and ROC-AUC on train and val; the run folder
gets ``last.pt`` and ``best.pt`` (best val AP; weights, architecture, task, resolved config,
optimiser state), ``metrics.csv`` (per epoch), ``test_metrics.json`` (best checkpoint on the
test videos) and ``relevance.png`` (LRP of a few test frames).
``resume=<ckpt>`` continues a run; ``init_from=<ckpt> train.trainable=fc`` fine-tunes the last
layer only, as the paper did for the independent-motion task.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.metrics import average_precision_score, roc_auc_score
from torch.utils.data import DataLoader
from tqdm import tqdm

from nims.data.scenes import build_scenes
from nims.data.synthetic_sets import GENERATORS, build_synthetic_frames
from nims.device import resolve_device
from nims.model import build_model, load_checkpoint, save_checkpoint
from nims.report import (announce_run_folder, require_positive_ints, resolved_config, run_dir,
                         write_csv, write_json, write_resolved_config)
from nims.tracking import tracking_run

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def build_datasets(cfg: DictConfig):
    """Train / val / test splits of the configured dataset, as (flow, label) datasets."""
    if cfg.dataset.name == "synthetic_scenes":
        return build_scenes(cfg.dataset, cfg.model.input_size)
    if cfg.dataset.name in GENERATORS:
        return build_synthetic_frames(cfg.dataset, cfg.flow, cfg.model.input_size,
                                      progress=bool(cfg.train.progress))
    raise ValueError(f"dataset={cfg.dataset.name} cannot train a classifier: it has no "
                     "frame labels; use crowd_synth, independent_synth or synthetic_scenes")


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> Dict[str, float]:
    """Accuracy (logit > 0), average precision and ROC-AUC (NaN when a split has one class)."""
    labels = labels.astype(int)
    one_class = labels.min() == labels.max()
    return {"accuracy": float(((logits > 0).astype(int) == labels).mean()),
            "average_precision": float("nan") if one_class else float(
                average_precision_score(labels, logits)),
            "roc_auc": float("nan") if one_class else float(roc_auc_score(labels, logits))}


@torch.no_grad()
def predict(model, loader) -> tuple:
    """Labels and logits of every frame of a loader (on the model's device)."""
    model.eval()
    device = model.fc.weight.device
    labels, logits = [], []
    for flows, targets in loader:
        logits.append(model(flows.to(device)).cpu().numpy())
        labels.append(targets.numpy())
    return np.concatenate(labels), np.concatenate(logits)


def evaluate_split(model, loader, loss_function) -> Dict[str, float]:
    labels, logits = predict(model, loader)
    loss = float(loss_function(torch.from_numpy(logits), torch.from_numpy(labels)))
    return {"loss": loss, **classification_metrics(labels, logits)}


@torch.no_grad()
def flow_bounds(loader) -> tuple:
    """Per-channel min and max of the training flows (LRP's ``bounds=dataset``)."""
    low = torch.full((2,), float("inf"))
    high = torch.full((2,), float("-inf"))
    for flows, _ in loader:
        low = torch.minimum(low, flows.amin(dim=(0, 2, 3)))
        high = torch.maximum(high, flows.amax(dim=(0, 2, 3)))
    return low, high


def flip_augment(flows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips of a ``(B, 2, H, W)`` flow batch.

    Mirroring the image mirrors the motion: a horizontal flip negates ``u``, a vertical one
    ``v``. Whether a frame holds salient motion does not change.
    """
    flows = flows.clone()
    for axis, channel in ((3, 0), (2, 1)):
        chosen = torch.rand(len(flows), generator=generator) < 0.5
        if chosen.any():
            flipped = flows[chosen].flip(axis)
            flipped[:, channel] *= -1
            flows[chosen] = flipped
    return flows


def set_trainable(model, trainable: str):
    """``all`` parameters, or only the final linear layer (``fc``)."""
    if trainable not in ("all", "fc"):
        raise ValueError(f"train.trainable must be 'all' or 'fc', got {trainable!r}")
    for name, parameter in model.named_parameters():
        parameter.requires_grad = trainable == "all" or name.startswith("fc.")
    return [p for p in model.parameters() if p.requires_grad]


def relevance_figure(model, dataset, count: int = 4) -> np.ndarray:
    """Colour-coded flow and LRP relevance of the first salient test frames, RGB uint8."""
    from nims.flow import flow_to_color
    from nims.lrp import lrp
    from nims.visualize import side_by_side

    indices = [i for i, label in enumerate(dataset.labels) if label][:count] or [0]
    flows = torch.stack([dataset[i][0] for i in indices])
    relevance = lrp(model, flows).relevance.numpy()
    rows = []
    for index, flow, relevance_map in zip(indices, flows.numpy(), relevance):
        scale = max(float(np.abs(relevance_map).max()), 1e-12)
        heat = (255 * np.clip(relevance_map / scale, 0, 1)).astype(np.uint8)
        rows.append(side_by_side([flow_to_color(flow.transpose(1, 2, 0)), heat], height=96,
                                 titles=[f"test frame {index}: flow",
                                         "positive relevance (white: max)"]))
    return np.vstack(rows)


@announce_run_folder
def run(cfg: DictConfig) -> Optional[float]:
    """Entry point of ``train.py``: the classifier (``model=classifier``, returns the best
    validation AP) or the supervised U-Net (``model=unet``, returns the best validation J)."""
    require_positive_ints(cfg, ("train.batch_size", "train.threads", "train.epochs"))
    if cfg.model.name == "unet":
        return run_unet(cfg)
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    seed_everything(int(cfg.seed))
    torch.set_num_threads(int(cfg.train.threads))
    datasets = build_datasets(cfg)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    loaders = {split: DataLoader(data, batch_size=int(cfg.train.batch_size),
                                 shuffle=split == "train", generator=generator,
                                 num_workers=int(cfg.train.num_workers))
               for split, data in datasets.items()}
    device = resolve_device(cfg.train.device, "train.device")
    model = build_model(cfg.model, cfg.task).to(device)
    config = resolved_config(cfg)

    start_epoch, best_ap, history = 0, -1.0, []
    if cfg.get("init_from"):
        source = load_checkpoint(cfg.init_from, cfg.task.name, model.architecture())
        model.load_state_dict(source["model_state"])
        log.info("initialised from %s", cfg.init_from)
    parameters = set_trainable(model, cfg.train.trainable)
    optimizer = torch.optim.AdamW(parameters, lr=float(cfg.train.lr),
                                  weight_decay=float(cfg.train.weight_decay))
    if cfg.get("resume"):
        state = load_checkpoint(cfg.resume, cfg.task.name, model.architecture())
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        start_epoch, best_ap, history = state["epoch"], state["best_val_ap"], state["history"]
        previous_best = Path(str(cfg.resume)).parent / "best.pt"
        if previous_best.is_file() and previous_best.resolve() != (folder / "best.pt").resolve():
            # The best so far may stay the best: keep it beside the continued run.
            shutil.copyfile(previous_best, folder / "best.pt")
        log.info("resumed from %s at epoch %d", cfg.resume, start_epoch)
    if not torch.isfinite(model.input_low).all():
        low, high = flow_bounds(loaders["train"])
        model.input_low, model.input_high = low.to(device), high.to(device)
    log.info("training on %s", device)

    loss_function = torch.nn.BCEWithLogitsLoss()
    with tracking_run(cfg, "train", folder) as tracker:
        for epoch in range(start_epoch, int(cfg.train.epochs)):
            model.train()
            if cfg.train.trainable == "fc":
                model.eval()  # frozen layers keep their normalisation statistics
            running, seen_labels, seen_logits = 0.0, [], []
            for flows, labels in tqdm(loaders["train"], desc=f"epoch {epoch + 1}", leave=False,
                                      disable=not cfg.train.progress):
                if cfg.train.augment:
                    flows = flip_augment(flows, generator)
                optimizer.zero_grad()
                logits = model(flows.to(device))
                loss = loss_function(logits, labels.to(device))
                loss.backward()
                optimizer.step()
                running += loss.item() * len(labels)
                seen_labels.append(labels.numpy())
                seen_logits.append(logits.detach().cpu().numpy())
            seen_labels = np.concatenate(seen_labels)
            row = {"epoch": epoch + 1, "train_loss": running / len(seen_labels)}
            row.update({f"train_{k}": v for k, v in classification_metrics(
                seen_labels, np.concatenate(seen_logits)).items()})
            row.update({f"val_{k}": v for k, v in
                        evaluate_split(model, loaders["val"], loss_function).items()})
            history.append(row)
            tracker.log(row, step=epoch + 1)
            log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})
            val_ap = row["val_average_precision"]
            improved = np.nan_to_num(val_ap, nan=row["val_accuracy"]) > best_ap
            if improved:
                best_ap = float(np.nan_to_num(val_ap, nan=row["val_accuracy"]))
            state = {"epoch": epoch + 1, "best_val_ap": best_ap, "history": history,
                     "optimizer_state": optimizer.state_dict(), "metrics": row}
            save_checkpoint(folder / "last.pt", model, cfg.task.name, config, **state)
            if improved:
                save_checkpoint(folder / "best.pt", model, cfg.task.name, config, **state)
        write_csv(folder / "metrics.csv", history)

        best = load_checkpoint(folder / "best.pt")
        model.load_state_dict(best["model_state"])
        test = {f"test_{k}": v for k, v in
                evaluate_split(model, loaders["test"], loss_function).items()}
        test["best_epoch"] = best["epoch"]
        write_json(folder / "test_metrics.json", test)
        tracker.summary({**test, "best_val_average_precision": best_ap})
        figure = relevance_figure(model.cpu(), datasets["test"])
        from nims.visualize import write_png

        write_png(folder / "relevance.png", figure)
        tracker.images("relevance", [figure], ["flow | LRP relevance, salient test frames"])
    print(f"best val AP {best_ap:.3f}; test accuracy {test['test_accuracy']:.3f}, "
          f"AP {test['test_average_precision']:.3f}; checkpoints in {folder}")
    return best_ap


def mask_jaccard(logits: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """Per-frame J of ``logits > 0`` against binary masks, ``(B, h, w)`` each (1 when both are
    empty, as in the DAVIS protocol)."""
    predicted = logits > 0
    truth = masks > 0.5
    union = (predicted | truth).flatten(1).sum(1).float()
    intersection = (predicted & truth).flatten(1).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union)).numpy()


def run_unet(cfg: DictConfig) -> float:
    """Train the supervised U-Net on a synthetic set's masks; best checkpoint by val J over the
    salient frames. Writes ``best.pt``, ``last.pt``, ``metrics.csv`` and ``test_metrics.json``."""
    from nims.data.synthetic_sets import MaskedFrames
    from nims.unet import UNet

    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    seed_everything(int(cfg.seed))
    torch.set_num_threads(int(cfg.train.threads))
    if cfg.dataset.name not in GENERATORS:
        raise ValueError(f"model=unet trains on masks: use dataset=crowd_synth or "
                         f"independent_synth, not {cfg.dataset.name}")
    frames = build_synthetic_frames(cfg.dataset, cfg.flow, cfg.model.input_size,
                                    progress=bool(cfg.train.progress))
    generator = torch.Generator().manual_seed(int(cfg.seed))
    loaders = {split: DataLoader(MaskedFrames(data), batch_size=int(cfg.train.batch_size),
                                 shuffle=split == "train", generator=generator)
               for split, data in frames.items()}
    model = UNet(cfg.model.input_size, cfg.model.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg.train.lr),
                                  weight_decay=float(cfg.train.weight_decay))
    # Salient pixels are rare (about 0.5% of a crowd frame): weigh them by the inverse of their
    # share in the training masks, or the U-Net learns to predict nothing.
    coverage = float(np.mean([frames["train"].mask(i).mean().item()
                              for i in range(0, len(frames["train"]), 4)]))
    positive_weight = float(np.clip((1 - coverage) / max(coverage, 1e-6), 1.0, 200.0))
    log.info("salient pixels: %.4f of the training frames; positive weight %.1f", coverage,
             positive_weight)
    loss_function = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(positive_weight))
    config = resolved_config(cfg)

    def evaluate(split):
        model.eval()
        losses, jaccards = [], []
        with torch.no_grad():
            for flows, masks in loaders[split]:
                logits = model(flows)
                losses.append(float(loss_function(logits, masks)) * len(flows))
                salient = masks.flatten(1).amax(1) > 0
                jaccards += mask_jaccard(logits[salient], masks[salient]).tolist()
        return {"loss": sum(losses) / len(frames[split]),
                "J_mean_salient": float(np.mean(jaccards)) if jaccards else float("nan")}

    best_j, history = -1.0, []
    with tracking_run(cfg, "train", folder) as tracker:
        for epoch in range(int(cfg.train.epochs)):
            model.train()
            running = 0.0
            for flows, masks in tqdm(loaders["train"], desc=f"epoch {epoch + 1}", leave=False,
                                     disable=not cfg.train.progress):
                if cfg.train.augment:
                    # Flip the masks with their flows (flip_augment negates channels 0-1 only).
                    both = flip_augment(torch.cat([flows, masks[:, None]], 1), generator)
                    flows, masks = both[:, :2], both[:, 2]
                optimizer.zero_grad()
                loss = loss_function(model(flows), masks)
                loss.backward()
                optimizer.step()
                running += loss.item() * len(flows)
            row = {"epoch": epoch + 1, "train_loss": running / len(frames["train"]),
                   **{f"val_{k}": v for k, v in evaluate("val").items()}}
            history.append(row)
            tracker.log(row, step=epoch + 1)
            log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})
            score = float(np.nan_to_num(row["val_J_mean_salient"], nan=0.0))
            state = {"epoch": epoch + 1, "history": history, "metrics": row}
            save_checkpoint(folder / "last.pt", model, cfg.task.name, config, **state)
            if score > best_j:
                best_j = score
                save_checkpoint(folder / "best.pt", model, cfg.task.name, config, **state)
        write_csv(folder / "metrics.csv", history)
        model.load_state_dict(load_checkpoint(folder / "best.pt")["model_state"])
        test = {f"test_{k}": v for k, v in evaluate("test").items()}
        write_json(folder / "test_metrics.json", test)
        tracker.summary({**test, "best_val_J_mean_salient": best_j})
    print(f"U-Net: best val J {best_j:.3f}; test J over salient frames "
          f"{test['test_J_mean_salient']:.3f}; checkpoints in {folder}")
    return best_j
