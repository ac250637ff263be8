"""Continuing a training (``train.py resume=<last.pt>``): what a resumed run may change, the
checkpoint's weights, optimiser and random states loaded back, so that the continued run draws
what the uninterrupted one would have drawn."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig

from nims.model import load_checkpoint
from nims.report import resolved_config
from nims.resume import computing_settings, setting_differences

log = logging.getLogger(__name__)


# Settings a resumed training may change: how long and how it runs, not what it learns from.
RESUME_FREE_KEYS = (
    "resume",
    "trainer.epochs",
    "progress",
    "trainer.threads",
    "trainer.num_workers",
    "device",
    "logger",
    "paths",
)


def check_resumable(cfg: DictConfig, state: dict) -> None:
    """Refuse to resume a training whose data, model, optimiser or seed settings differ from
    the checkpoint's: another ``dataset.videos`` or ``seed`` redraws the splits (a video
    trained on would become a test video), another ``lr`` is another run."""
    if "optimizer_state" not in state or "rng_state" not in state:
        raise ValueError(
            f"resume={cfg.resume}: not a checkpoint train.py can continue (no optimiser or "
            "random-generator state): give the last.pt of a train.py run, or start from its "
            "weights with init_from=<checkpoint>"
        )
    differences = setting_differences(
        computing_settings(state.get("config") or {}, RESUME_FREE_KEYS),
        computing_settings(resolved_config(cfg), RESUME_FREE_KEYS),
    )
    if differences:
        raise ValueError(
            f"resume={cfg.resume} was trained with other settings ({differences}): resume "
            "with its settings (see its run's config.yaml), or start a new run "
            "(init_from=<checkpoint> to start from its weights)"
        )


def start_state(cfg: DictConfig, model, optimizer, folder: Path) -> tuple[int, float, list, dict]:
    """``(first epoch, best score, history, random states)``: a fresh run's, or those of the
    run ``resume`` names (its weights, optimiser and random states loaded, its ``best.pt``
    copied beside this run)."""
    if not cfg.get("resume"):
        return 0, -1.0, [], {}
    state = load_checkpoint(cfg.resume, cfg.task.name, model.architecture())
    check_resumable(cfg, state)
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer_state"])
    best = state.get("best_score", state.get("best_val_ap", -1.0))  # older runs: best_val_ap
    previous_best = Path(str(cfg.resume)).parent / "best.pt"
    if previous_best.is_file() and previous_best.resolve() != (folder / "best.pt").resolve():
        # The best so far may stay the best: keep it beside the continued run.
        shutil.copyfile(previous_best, folder / "best.pt")
    log.info("resumed from %s at epoch %d", cfg.resume, state["epoch"])
    return state["epoch"], best, state["history"], state["rng_state"]


def random_states(generator: torch.Generator) -> dict:
    """The states of every random generator the loop draws from (shuffling, augmentation)."""
    return {"generator": generator.get_state(), "torch": torch.get_rng_state()}


def restore_random_states(generator: torch.Generator, states: dict) -> None:
    """Set the generators as :func:`random_states` saved them: a resumed run then draws what
    the uninterrupted run would have drawn."""
    if states:
        generator.set_state(states["generator"])
        torch.set_rng_state(states["torch"])
