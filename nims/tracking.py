"""Experiment tracking: one Weights & Biases run per job, scoped by a context manager.

``logger=wandb`` (offline unless ``WANDB_MODE`` says otherwise) or ``logger=none``. The run is
opened with ``with`` so that each job of a multirun, even in one process, gets its own run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from omegaconf import DictConfig


class Tracker:
    """What the pipeline logs; :class:`WandbTracker` sends it to W&B, this base class nowhere
    (``logger=none``)."""

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log scalar metrics (e.g. per epoch)."""

    def summary(self, metrics: dict[str, float]) -> None:
        """Record the run's final metrics."""

    def table(self, name: str, rows: Sequence[dict[str, object]]) -> None:
        """Record a table of dict rows."""

    def images(self, name: str, images: Sequence[np.ndarray], captions: Sequence[str]) -> None:
        """Record RGB uint8 images ``(H, W, 3)``."""


class WandbTracker(Tracker):
    def __init__(self, run):
        self.run = run

    def log(self, metrics, step=None):
        self.run.log(dict(metrics), step=step)

    def summary(self, metrics):
        for key, value in metrics.items():
            self.run.summary[key] = value

    def table(self, name, rows):
        import wandb

        if not rows:
            return
        columns = list(rows[0])
        self.run.log(
            {
                name: wandb.Table(
                    columns=columns, data=[[row.get(c) for c in columns] for row in rows]
                )
            }
        )

    def images(self, name, images, captions):
        import wandb

        self.run.log(
            {
                name: [
                    wandb.Image(image, caption=caption)
                    for image, caption in zip(images, captions, strict=True)
                ]
            }
        )


def run_name(folder: Path) -> str:
    """The W&B run's name: in a multirun, the job's overrides (``beta=1.2,step2.scale=std``),
    so that a sweep's runs say what they tried; else the run folder's name."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        overrides = HydraConfig.get().job.override_dirname
        if overrides:
            return overrides[:128]
    return folder.name


def _sweep_group() -> str | None:
    """Name of the multirun sweep folder, used as the W&B group of its jobs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir).name
    return None


@contextmanager
def tracking_run(cfg: DictConfig, job_type: str, folder: Path) -> Iterator[Tracker]:
    """Open the run the ``logger`` config group asks for; it is finished when the block ends.

    Parameters
    ----------
    cfg : DictConfig
        The job's config (logged in full, resolved).
    job_type : str
        ``train`` or ``eval``.
    folder : Path
        The job's output folder; W&B writes its files under it.
    """
    logger = cfg.logger
    if logger.name == "none":
        yield Tracker()
        return
    if logger.name != "wandb":
        raise ValueError(f"logger.name must be 'wandb' or 'none', got {logger.name!r}")
    import wandb

    from nims.report import resolved_config

    if logger.mode == "online" and not _has_wandb_key():
        raise ValueError(
            "logger.mode=online (WANDB_MODE=online) but no W&B key: run `wandb login` or set "
            "WANDB_API_KEY, or log offline (logger.mode=offline) or not at all (logger=none)"
        )
    with wandb.init(
        project=logger.project,
        entity=logger.entity,
        group=logger.group or _sweep_group(),
        job_type=job_type,
        config=resolved_config(cfg),
        dir=str(folder),
        mode=logger.mode,
        name=run_name(folder),
        settings=wandb.Settings(silent=True),
    ) as run:
        yield WandbTracker(run)
    if logger.mode == "offline":
        print(
            f"W&B run logged offline in {Path(run.dir).parent}; upload it with: "
            f"wandb sync {Path(run.dir).parent}",
            flush=True,
        )


def _has_wandb_key() -> bool:
    """Whether W&B can authenticate: ``WANDB_API_KEY`` or a ``wandb login`` in ``~/.netrc``."""
    import netrc
    import os

    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False
