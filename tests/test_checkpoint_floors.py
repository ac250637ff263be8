"""The shipped checkpoints keep their level: NIMS with the task's defaults on a committed clip of
the task's generator (exact flow, every frame salient; ``tests/data/make_clips.py``) must reach
a J floor and a relevance floor, which a classifier of the same architecture with random weights
does not reach (so a swapped or degraded checkpoint fails here). The floors sit below what the
shipped checkpoints reach on the clips (``experiments/classifiers.md``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nims.methods.nims import run_frames
from nims.metrics import jaccard
from nims.model import MotionClassifier, load_classifier
from nims.relevance_quality import mean_quality, relevance_quality
from tests.conftest import REPO

# task -> the least J Mean, share of positive relevance on the movers, and share of frames
# called salient
FLOORS = {
    "independent": {"J": 0.7, "share_inside": 0.4, "salient": 0.9},
    "crowd": {"J": 0.1, "share_inside": 0.14, "salient": 0.4},
}


def clip_scores(model, task, compose_config) -> dict:
    cfg = compose_config("evaluate", [f"task={task}", "logger=none"])
    clip = np.load(REPO / "tests" / "data" / f"{task}_clip.npz")
    flows = [flow.astype(np.float32) for flow in clip["flows"]]
    results = run_frames(model, flows, cfg)
    quality = mean_quality(
        relevance_quality(r.relevance, m) for r, m in zip(results, clip["masks"], strict=True)
    )
    return {
        "J": float(
            np.mean([jaccard(r.mask, m) for r, m in zip(results, clip["masks"], strict=True)])
        ),
        "share_inside": quality["relevance_share_inside"],
        "salient": float(np.mean([r.logit > 0 for r in results])),
    }


def random_like(model: MotionClassifier) -> MotionClassifier:
    torch.manual_seed(0)
    architecture = model.architecture()
    return MotionClassifier(
        architecture["input_size"],
        architecture["channels"],
        architecture["kernel_sizes"],
        architecture["norm"],
        architecture["head"],
    ).eval()


@pytest.mark.parametrize("task", sorted(FLOORS))
def test_the_shipped_checkpoint_keeps_its_floors(task, compose_config):
    scores = clip_scores(load_classifier(REPO / "checkpoints" / f"{task}.pt"), task, compose_config)
    below = {k: (scores[k], floor) for k, floor in FLOORS[task].items() if scores[k] < floor}
    assert not below, f"checkpoints/{task}.pt below its floors (score, floor): {below}"


@pytest.mark.parametrize("task", sorted(FLOORS))
def test_a_random_classifier_falls_below_the_floors(task, compose_config):
    model = random_like(load_classifier(REPO / "checkpoints" / f"{task}.pt"))
    scores = clip_scores(model, task, compose_config)
    assert any(scores[k] < floor for k, floor in FLOORS[task].items()), scores
