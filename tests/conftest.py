"""Shared fixtures: the real data in ../shared (skipped when absent) and Hydra composition."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CONFIG_DIR = REPO / "conf"

os.environ["WANDB_MODE"] = "disabled"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a visible reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data not available: {path} is absent (only a developer checkout "
            "with ../shared has it)"
        )
    return path


@pytest.fixture
def davis_root() -> Path:
    return shared_path("davis2016-mini", "DAVIS")


@pytest.fixture
def compose_config(tmp_path):
    """``compose_config(name, overrides, output_dir=None)``: a composed config whose run folder
    is ``tmp_path/run<n>`` (or ``output_dir``).

    Hydra's runtime config is set as the entry point would set it, so ``run(cfg)`` can be called
    directly.
    """
    GlobalHydra.instance().clear()
    initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR))
    counter = {"jobs": 0}

    def _compose(name: str, overrides=(), output_dir=None):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
        counter["jobs"] += 1
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir or tmp_path / f"run{counter['jobs']}")
            cfg.hydra.job.num = counter["jobs"]
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


TINY_SIZE = (120, 200)  # (height, width) of the tiny DAVIS frames


def warp_errors(first: np.ndarray, second: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Mean absolute colour difference between ``first`` and ``second`` warped back by ``flow``
    ``(H, W, 2)``, at the pixels whose flow lands more than a pixel inside the frame: ``(N,)``."""
    height, width = flow.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = cols + flow[..., 0], rows + flow[..., 1]
    warped = cv2.remap(second, x, y, cv2.INTER_LINEAR)
    inside = (x > 1) & (x < width - 2) & (y > 1) & (y < height - 2)
    return np.abs(warped.astype(float) - first.astype(float)).mean(axis=2)[inside]


def tiny_davis(root, sequences=("square",), frames=5):
    """A DAVIS layout with textured frames and a square moving 3 px per frame."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (*TINY_SIZE, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 1.5)
    for sequence in sequences:
        images = root / "JPEGImages" / "480p" / sequence
        annotations = root / "Annotations" / "480p" / sequence
        images.mkdir(parents=True)
        annotations.mkdir(parents=True)
        for index in range(frames):
            frame = background.copy()
            mask = np.zeros(TINY_SIZE, dtype=np.uint8)
            x = 40 + (3 * index) % 100
            frame[40:80, x : x + 40] = 255 - background[40:80, 60:100]
            mask[40:80, x : x + 40] = 255
            cv2.imwrite(str(images / f"{index:05d}.jpg"), frame)
            cv2.imwrite(str(annotations / f"{index:05d}.png"), mask)
    return root


INTEGRATION_SIGNS = (
    "shared_path(",
    "davis_root",
    "compose_config",
    "subprocess",
    "multiprocessing",
    "tiny_davis(",
)


def pytest_collection_modifyitems(config, items):
    """Mark as ``integration`` every test that runs an entry point (through ``compose_config``,
    a subprocess or other processes), makes a DAVIS folder or reads the real data in ../shared,
    as its fixtures or its source show; the rest are unit tests (``make test-fast``)."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"davis_root", "compose_config", "report"} or any(
            sign in source for sign in INTEGRATION_SIGNS
        ):
            item.add_marker(pytest.mark.integration)
