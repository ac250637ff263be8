"""The shipped checkpoints keep their level: NIMS with the task's defaults on a committed clip of
the task's generator (exact flow, every frame salient; ``tests/data/make_clips.py``) must reach
a J floor and a relevance floor, which a classifier of the same architecture with random weights
does not reach (so a swapped or degraded checkpoint fails here). The floors sit below what the
shipped checkpoints reach on the clips (``experiments/classifiers.md``). The independent task's
classifier for real video (``independent.pt``, a mean head trained on real flows) is held to the
same rendered clip with its own floors: its dense relevance puts less of its mass on the movers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nims.methods.nims import run_frames
from nims.metrics import jaccard
from nims.model import MotionClassifier, load_classifier
from nims.relevance_quality import mean_quality, relevance_quality
from tests.conftest import REPO

# shipped checkpoint -> its task, the least J Mean, share of positive relevance on the movers,
# and share of frames called salient on the task's clip
FLOORS = {
    "independent_synth": ("independent", {"J": 0.7, "share_inside": 0.4, "salient": 0.9}),
    "independent": ("independent", {"J": 0.82, "share_inside": 0.1, "salient": 0.9}),
    "crowd": ("crowd", {"J": 0.1, "share_inside": 0.14, "salient": 0.4}),
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


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_shipped_checkpoint_keeps_its_floors(name, compose_config):
    task, floors = FLOORS[name]
    scores = clip_scores(load_classifier(REPO / "checkpoints" / f"{name}.pt"), task, compose_config)
    below = {k: (scores[k], floor) for k, floor in floors.items() if scores[k] < floor}
    assert not below, f"checkpoints/{name}.pt below its floors (score, floor): {below}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_a_random_classifier_falls_below_the_floors(name, compose_config):
    task, floors = FLOORS[name]
    model = random_like(load_classifier(REPO / "checkpoints" / f"{name}.pt"))
    scores = clip_scores(model, task, compose_config)
    assert any(scores[k] < floor for k, floor in floors.items()), scores
