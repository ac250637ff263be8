"""The light step's contrast candidates: a crowd of walkers moving one way over a panning
background, one walker moving against them; flows written directly (known answer)."""

import numpy as np
import pytest

from nims.step2 import segment
from nims.step2.contrast import contrast_candidates

HEIGHT, WIDTH = 120, 200
CAMERA = np.array([1.5, -0.5])  # pixels per frame: the pan every pixel shares
CROWD = np.array([6.0, 1.0])  # the crowd's own motion


def crowd_flow(walkers=100, against=(-5.0, 3.0), seed=0, crowd_motion=CROWD):
    """Flow ``(H, W, 2)`` of a pan, ``walkers`` 4x6 blobs moving ``crowd_motion`` (each with its
    own jitter), one blob moving ``against``; the wrong-way walker's mask and the crowd's."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    flow = CAMERA + 0.002 * np.stack([cols, rows], -1) + rng.normal(0, 0.1, (HEIGHT, WIDTH, 2))
    crowd = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for _ in range(walkers):
        top, left = rng.integers(0, HEIGHT - 6), rng.integers(0, WIDTH - 4)
        box = (slice(top, top + 6), slice(left, left + 4))
        flow[box] += crowd_motion + rng.normal(0, 0.5, 2)
        crowd[box] = True
    salient = np.zeros((HEIGHT, WIDTH), dtype=bool)
    salient[50:60, 90:96] = True
    flow[salient] = CAMERA + against
    crowd &= ~salient
    return flow.astype(np.float32), salient, crowd


def test_the_walker_against_the_crowd_is_the_candidate_not_the_crowd():
    flow, salient, crowd = crowd_flow()
    candidates = contrast_candidates(flow)
    assert candidates[salient].mean() > 0.95
    assert candidates[crowd].mean() < 0.01
    assert not candidates[~(salient | crowd)].any()  # the panning background


def test_relevance_mostly_on_the_crowd_still_selects_the_walker():
    # The crowd holds about four fifths of the relevance, the walker one fifth: the crowd's
    # relevance falls in the non-candidate (largest) region, so only the walker can be kept.
    flow, salient, crowd = crowd_flow()
    relevance = np.where(salient, 1.0, np.where(crowd, 0.1, 0.0))
    assert relevance[crowd].sum() > 3 * relevance[salient].sum()
    result = segment(
        flow,
        relevance,
        {"name": "light", "candidates": "contrast"},
    )
    assert result.salient_mask[salient].mean() > 0.95
    assert not result.salient_mask[crowd].any()


def test_a_walker_going_the_crowds_way_is_no_candidate():
    flow, salient, _ = crowd_flow(against=CROWD * 1.3)
    assert not contrast_candidates(flow)[salient].any()


def test_a_static_scene_has_no_candidate():
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    pan = (CAMERA + 0.01 * np.stack([cols, rows], -1)).astype(np.float32)
    assert not contrast_candidates(pan).any()


@pytest.mark.parametrize(
    "options, key",
    [
        ({"min_angle": 0.0}, "step2.min_angle"),
        ({"min_motion": 0.0}, "step2.min_motion"),
        ({"noise_factor": -1.0}, "step2.noise_factor"),
        ({"candidates": "flow"}, "step2.candidates"),
    ],
)
def test_bad_settings_name_the_key(options, key):
    flow, salient, _ = crowd_flow()
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        segment(flow, salient.astype(float), {"name": "light", "candidates": "contrast", **options})


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
def test_thresholds_hold_at_any_flow_scale(scale):
    # A lower resolution or a higher frame rate scales every flow vector down: the relative
    # thresholds find the same walker (down to the noise floor).
    flow, salient, crowd = crowd_flow()
    candidates = contrast_candidates(flow * scale)
    assert candidates[salient].mean() > 0.95
    assert candidates[crowd].mean() < 0.01


def test_alpha_bounds_the_projection_on_the_relevant_residual():
    # Two wrong-way walkers, equally relevant, one twice as fast as the other: the relevant
    # residual m is their mean, (-4.5, 2.25); w.m/|m|^2 - 1 is +1/3 for the fast walker and
    # -1/3 for the slow one. The paper's alpha1 -0.01 keeps the fast one, a wider -0.5 both,
    # and alpha2 0.2 only the slow one.
    flow, fast, crowd = crowd_flow(against=(-6.0, 3.0), crowd_motion=np.array([3.0, 0.5]))
    slow = np.zeros_like(fast)
    slow[20:30, 150:156] = True
    flow[slow] = CAMERA + (-3.0, 1.5)
    crowd &= ~slow
    relevance = (fast | slow).astype(float)

    def kept(alpha1, alpha2):
        options = {"name": "light", "alpha1": alpha1, "alpha2": alpha2}
        mask = segment(flow, relevance, options).salient_mask
        assert not mask[crowd].any()
        return mask[fast].mean(), mask[slow].mean()

    assert kept(-0.01, 4.0) == (1.0, 0.0)
    assert kept(-0.5, 4.0) == (1.0, 1.0)
    assert kept(-0.5, 0.2) == (0.0, 1.0)
