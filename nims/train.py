"""``python train.py task=... [model=unet]``: one training loop for every trainable model.

The loop (seeded, deterministic on the CPU; ``device=auto|cpu|cuda``) trains what
:mod:`nims.objectives` describes: the frame classifier on frame-level labels (``model=classifier``)
or the supervised U-Net on masks (``model=unet``). AdamW; splits are by video. Every epoch logs
the loss and the objective's metrics on train and val; the run folder gets ``last.pt`` and
``best.pt`` (best validation score; weights, architecture, task, resolved config, optimiser state),
``metrics.csv`` (per epoch), ``test_metrics.json`` (best checkpoint on the test videos) and, for
the classifier, ``relevance.png`` (LRP of a few test frames).
``resume=<ckpt>`` continues a run; ``init_from=<ckpt> trainer.trainable=fc`` fine-tunes the
classifier's last layer only, as the paper did for the independent-motion task.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm import tqdm

from nims.device import resolve_device
from nims.model import load_checkpoint, save_checkpoint, weights_architecture
from nims.objectives import objective_for
from nims.report import (
    announce_run_folder,
    bars_off,
    require_positive_ints,
    resolved_config,
    run_dir,
    write_csv,
    write_json,
    write_resolved_config,
)
from nims.tracking import tracking_run
from nims.training_resume import random_states, restore_random_states, start_state

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch; deterministic kernels (cuBLAS needs its workspace set
    before CUDA starts; an op without a deterministic CUDA kernel warns instead of failing)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())


def set_trainable(model, trainable: str):
    """``all`` parameters, or only the classifier's final linear layer (``fc``)."""
    if trainable not in ("all", "fc"):
        raise ValueError(f"trainer.trainable must be 'all' or 'fc', got {trainable!r}")
    if trainable == "fc" and not hasattr(model, "fc"):
        raise ValueError(
            f"trainer.trainable=fc fine-tunes the classifier's last layer; "
            f"{type(model).__name__} has none: use trainer.trainable=all"
        )
    for name, parameter in model.named_parameters():
        parameter.requires_grad = trainable == "all" or name.startswith("fc.")
    return [p for p in model.parameters() if p.requires_grad]


def init_from(model, path, task: str) -> None:
    """Start ``model`` from the weights of the checkpoint ``path`` (``init_from``): same task
    and the same weights' architecture (:func:`nims.model.weights_architecture`: a fully
    convolutional classifier may change its input size). LRP's dataset bounds, in pixels at
    the checkpoint's input size, are measured again when that size changes."""
    source = load_checkpoint(path, task)
    found = source.get("architecture") or {}
    if weights_architecture(found) != weights_architecture(model.architecture()):
        raise ValueError(
            f"init_from={path} has architecture {found}, the config asks for "
            f"{model.architecture()}: set model.* to match it"
        )
    model.load_state_dict(source["model_state"])
    if list(found.get("input_size", [])) != list(model.architecture()["input_size"]):
        model.input_low.fill_(float("nan"))
        model.input_high.fill_(float("nan"))
    log.info("initialised from %s", path)


def run_epoch(
    model,
    objective,
    loader: DataLoader,
    device,
    optimizer=None,
    generator=None,
    augment: bool = False,
    frozen_norms: bool = False,
    progress: str | None = None,
) -> dict[str, float]:
    """One pass over ``loader``: a training epoch when ``optimizer`` is given, else an
    evaluation. Returns the mean loss and the objective's metrics."""
    training = optimizer is not None
    # Frozen layers (trainer.trainable=fc) keep their normalisation statistics.
    model.train(training and not frozen_norms)
    total, count, summaries = 0.0, 0, []
    with torch.set_grad_enabled(training):
        for inputs, targets in tqdm(
            loader, desc=progress, leave=False, disable=bars_off(progress is not None)
        ):
            inputs, targets = inputs.to(device), targets.to(device)
            if augment:  # on the device, a batch at a time
                inputs, targets = objective.augment(inputs, targets, generator)
            logits = model(inputs)
            loss = objective.loss(logits, targets)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += loss.item() * len(inputs)
            count += len(inputs)
            summaries.append(objective.summarise(logits.detach(), targets))
    return {"loss": total / count, **objective.metrics(summaries)}


def score(objective, row: dict[str, float]) -> float:
    """The validation score that picks ``best.pt`` (its fallback when it is undefined)."""
    value = row[objective.score_key]
    fallback = row[objective.fallback_key] if objective.fallback_key else 0.0
    return float(np.nan_to_num(value, nan=fallback))


def _loaders(cfg: DictConfig, datasets, generator: torch.Generator) -> dict[str, DataLoader]:
    return {
        split: DataLoader(
            data,
            batch_size=int(cfg.trainer.batch_size),
            shuffle=split == "train",
            generator=generator,
            num_workers=int(cfg.trainer.num_workers),
        )
        for split, data in datasets.items()
    }


@announce_run_folder
def run(cfg: DictConfig) -> float:
    """Entry point of ``train.py``; returns the best validation score (AP for the classifier,
    J over the salient frames for the U-Net)."""
    require_positive_ints(cfg, ("trainer.batch_size", "trainer.threads", "trainer.epochs"))
    objective = objective_for(cfg)
    folder = run_dir(cfg)
    # A resume may continue in its own folder: its settings are checked against the checkpoint.
    write_resolved_config(cfg, folder, continuing=bool(cfg.get("resume")))
    seed_everything(int(cfg.seed))
    torch.set_num_threads(int(cfg.trainer.threads))
    datasets = objective.datasets()
    print(describe_training(cfg, datasets), flush=True)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    loaders = _loaders(cfg, datasets, generator)
    device = resolve_device(cfg.device, "device")
    model = objective.model().to(device)
    if cfg.get("init_from"):
        init_from(model, cfg.init_from, cfg.task.name)
    parameters = set_trainable(model, cfg.trainer.trainable)
    optimizer = torch.optim.AdamW(
        parameters, lr=float(cfg.trainer.lr), weight_decay=float(cfg.trainer.weight_decay)
    )
    start_epoch, best, history, states = start_state(cfg, model, optimizer, folder)
    objective.prepare(model, loaders, device)
    restore_random_states(generator, states)  # after prepare, which may read the loaders
    log.info("training on %s", device)
    config = resolved_config(cfg)
    with tracking_run(cfg, "train", folder) as tracker:
        for epoch in range(start_epoch, int(cfg.trainer.epochs)):
            row = _epoch(cfg, objective, model, loaders, device, optimizer, generator, epoch)
            history.append(row)
            tracker.log(row, step=epoch + 1)
            improved = score(objective, row) > best
            best = max(best, score(objective, row))
            state = {
                "epoch": epoch + 1,
                "best_score": best,
                "history": history,
                "optimizer_state": optimizer.state_dict(),
                "rng_state": random_states(generator),
                "metrics": row,
            }
            save_checkpoint(folder / "last.pt", model, cfg.task.name, config, **state)
            if improved:
                save_checkpoint(folder / "best.pt", model, cfg.task.name, config, **state)
        write_csv(folder / "metrics.csv", history)
        best_state = load_checkpoint(folder / "best.pt")
        model.load_state_dict(best_state["model_state"])
        test = {
            f"test_{k}": v for k, v in run_epoch(model, objective, loaders["test"], device).items()
        }
        test["best_epoch"] = best_state["epoch"]
        write_json(folder / "test_metrics.json", test)
        tracker.summary({**test, f"best_{objective.score_key}": best})
        message = objective.finish(model, datasets, folder, tracker, test, best)
    print(f"{message}; checkpoints in {folder}")
    return best


def _set_description(dataset: dict[str, object], epochs: int) -> str:
    """``dataset=<name>: <videos> videos x <frames> frames at <h>x<w>, <epochs> epochs``, or
    ``dataset=<name>: the <split> split's sequences, ...`` for a set made of DAVIS sequences."""
    text = f"dataset={dataset.get('name')}"
    frames = dataset.get("frames", dataset.get("frames_per_video"))
    if dataset.get("videos") is not None and frames is not None:
        text += f": {dataset['videos']} videos x {frames} frames"
    elif dataset.get("split") is not None:
        chosen = dataset.get("sequences")
        text += f": the DAVIS {dataset['split']} split's " + (
            f"{len(chosen)} sequences given" if chosen else "sequences"
        )
    if dataset.get("size") is not None:
        text += f" at {dataset['size'][0]}x{dataset['size'][1]}"
    return f"{text}, {epochs} epochs"


def describe_training(cfg: DictConfig, datasets) -> str:
    """What this run trains on (frames per split, the set's size), and, when it differs, the
    set the task's shipped checkpoint for the same kind of scenes was trained on: the quick
    default is not the recipe."""
    counts = ", ".join(f"{split} {len(data)}" for split, data in datasets.items())
    ours = _set_description(resolved_config(cfg)["dataset"], int(cfg.trainer.epochs))
    line = f"training {cfg.model.name} for task={cfg.task.name} on {ours} ({counts} frames)"
    prefix = "unet_" if cfg.model.name == "unet" else ""
    # the task's shipped classifier for this set's kind of scenes (conf/task)
    name = f"{prefix}{cfg.task.name}{cfg.task.get('checkpoint_suffix', '')}.pt"
    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / name
    if not shipped.is_file():
        return line
    recipe = load_checkpoint(shipped).get("config") or {}
    if "dataset" not in recipe:
        return line
    theirs = _set_description(recipe["dataset"], recipe.get("trainer", {}).get("epochs", "?"))
    if theirs != ours:
        line += (
            f"; the shipped checkpoints/{shipped.name} was trained on {theirs} "
            f"(its command: experiments/{'crowd' if prefix else 'classifiers'}.md)"
        )
    return line


def _epoch(cfg, objective, model, loaders, device, optimizer, generator, epoch: int) -> dict:
    """One training epoch and the validation pass after it, as a logged row (the training
    pass's frames per second logged beside it, not in the row: it is the machine's, not the
    run's)."""
    start = time.perf_counter()
    trained = run_epoch(
        model,
        objective,
        loaders["train"],
        device,
        optimizer,
        generator,
        augment=bool(cfg.trainer.augment),
        frozen_norms=cfg.trainer.trainable == "fc",
        progress=f"epoch {epoch + 1}" if cfg.progress else None,
    )
    speed = len(loaders["train"].dataset) / (time.perf_counter() - start)
    validated = run_epoch(model, objective, loaders["val"], device)
    objective.calibrate(model, validated)
    row = {
        "epoch": epoch + 1,
        **{f"train_{k}": v for k, v in trained.items()},
        **{f"val_{k}": v for k, v in validated.items()},
    }
    log.info(
        "epoch %d (%.0f training frames/s on %s): %s",
        epoch + 1,
        speed,
        device,
        {k: round(v, 4) for k, v in row.items()},
    )
    return row
