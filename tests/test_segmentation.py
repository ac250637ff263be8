import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nims.data.davis import read_mask
from nims.flow import read_flow
from nims.motion import fit_affine
from nims.reference import hierarchical_step_sklearn
from nims.saliency import saliency_map
from nims.step2 import STEP2_METHODS, connected_regions, segment, select_salient_regions
from nims.step2.hierarchical import (
    hierarchical_step,
    motion_layers,
    residual_split_layers,
    spread_samples,
    weighs_by_residual,
)
from nims.step2.light import light_step
from nims.synthetic.pairs import layered_flow
from tests.conftest import shared_path

SHAPE = (240, 320)
BACKGROUND = np.array([[0.8, 0.004, -0.002], [-0.5, 0.001, 0.003]])


def shifted(offset_u, offset_v):
    motion = BACKGROUND.copy()
    motion[:, 0] += [offset_u, offset_v]
    return motion


def centred_box(height, width):
    return slice(120 - height // 2, 120 + height // 2), slice(160 - width // 2, 160 + width // 2)


def nested_layers(n_layers):
    """Concentric layers (70%, 18%, 8%, 4% of the frame for 4): each is the majority of what
    remains once the outer ones are peeled, and no affine field can bridge a ring and its
    centre. (Two separate patches side by side can be: one affine field with a steep slope
    explains both, and the peeling rightly merges them.)"""
    layers = np.ones(SHAPE, dtype=np.int32)
    boxes = [centred_box(144, 160), centred_box(96, 96), centred_box(48, 64)]
    for label, box in enumerate(boxes[: n_layers - 1], start=2):
        layers[box] = label
    motions = [BACKGROUND, shifted(5, 2), shifted(-4, 3), shifted(2, -5)][:n_layers]
    return layers, motions


def grouping_accuracy(truth, found):
    """Fraction of pixels grouped like the truth, up to a permutation of labels."""
    confusion = np.zeros((truth.max() + 1, found.max() + 1))
    np.add.at(confusion, (truth.ravel(), found.ravel()), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return confusion[rows, cols].sum() / truth.size


@pytest.mark.parametrize("n_layers", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_hierarchical_step_recovers_affine_layers(n_layers, seed):
    layers, motions = nested_layers(n_layers)
    rng = np.random.default_rng(seed)
    # Bounded noise (uniform, +-0.1 px): the beta test at 1.6 accepts every noisy inlier, so
    # any misgrouped pixel is the algorithm's fault, not the noise tail's (tested below).
    flow = layered_flow(layers, motions) + rng.uniform(-0.1, 0.1, SHAPE + (2,)).astype(np.float32)
    found = motion_layers(flow, beta=1.6, scale="mad")
    assert found.max() == n_layers
    assert grouping_accuracy(layers, found) >= 0.99


@pytest.mark.parametrize("frame", [0, 1, 2])
def test_std_scale_at_paper_beta_swallows_the_swan_on_real_flow(frame):
    # The brief's observation, on the authors' RAFT flow of DAVIS blackswan: with the std of
    # all residuals as scale (the paper as written) and beta = 1.6 the first layer takes most
    # of the swan; beta = 1.2 or the MAD scale keep it out.
    flow = read_flow(shared_path("flows", "blackswan-raft", f"{frame:05d}.flo"))
    truth = read_mask(
        shared_path(
            "davis2016-mini", "DAVIS", "Annotations", "480p", "blackswan", f"{frame:05d}.png"
        )
    )
    swallowed = {
        (scale, beta): (motion_layers(flow, beta, scale)[truth] == 1).mean()
        for scale, beta in [("std", 1.6), ("std", 1.2), ("mad", 1.6)]
    }
    assert swallowed["std", 1.6] > 0.8
    assert swallowed["std", 1.2] < 0.5
    assert swallowed["mad", 1.6] < 0.01


def test_first_layer_keeps_the_gaussian_noise_mass_the_beta_test_predicts():
    # One affine layer + Gaussian noise: a pixel stays in layer 1 when
    # 0.5 * (|a| + |b|) < beta for a, b standard normal (the MAD estimates sigma).
    shape = (300, 400)
    flow = layered_flow(np.ones(shape, dtype=np.int32), [BACKGROUND])
    flow += np.random.default_rng(3).normal(0, 0.2, flow.shape).astype(np.float32)
    found = motion_layers(flow, beta=1.6, scale="mad")
    samples = np.abs(np.random.default_rng(4).normal(size=(2, 2_000_000))).sum(axis=0) / 2
    assert (found == 1).mean() == pytest.approx((samples < 1.6).mean(), abs=0.005)


def test_min_outliers_stops_the_peeling():
    layers, motions = nested_layers(4)
    flow = layered_flow(layers, motions)
    # The smallest layer has 3072 pixels: with min_outliers above that, it becomes leftovers.
    found = motion_layers(flow, beta=1.6, scale="mad", min_outliers=4000)
    assert found.max() == 4 and (found == 4).sum() == (layers == 4).sum()
    assert motion_layers(flow, beta=1.6, scale="mad", max_layers=1).max() == 2


def test_connected_regions_split_layers_and_drop_small_ones():
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[:, :6] = 1
    labels[:, 6:] = 2
    labels[0:3, 0:3] = 2  # a second piece of layer 2, 9 pixels
    labels[9, 11] = 1  # a 1-pixel piece of layer 1
    regions = connected_regions(labels, min_region=5)
    assert regions.max() == 3
    assert regions[9, 11] == 0
    assert len(np.unique(regions[labels == 2])) == 2
    assert np.array_equal(connected_regions(labels, 0) > 0, labels > 0)
    with pytest.raises(ValueError, match="connectivity"):
        connected_regions(labels, connectivity=6)


def test_diagonal_neighbours_join_only_with_8_connectivity():
    labels = np.eye(4, dtype=np.int32)
    assert connected_regions(labels, connectivity=8).max() == 1
    assert connected_regions(labels, connectivity=4).max() == 4


def test_selection_keeps_regions_more_relevant_than_the_largest():
    regions = np.zeros((4, 10), dtype=np.int32)
    regions[:, :6] = 1  # largest, mean relevance 0.2
    regions[:, 6:8] = 2  # 0.5: kept
    regions[:, 8:] = 3  # 0.1: dropped
    relevance = np.select([regions == 1, regions == 2, regions == 3], [0.2, 0.5, 0.1])
    scores, labels, mask = select_salient_regions(regions, relevance)
    np.testing.assert_allclose(scores[1:], [0.2, 0.5, 0.1])
    assert labels.tolist() == [2]
    assert np.array_equal(mask, regions == 2)


def test_relevance_mass_drops_specks_the_paper_rule_keeps():
    # A 100-pixel object holds most of the relevance; a 2-pixel speck under the relevance
    # peak has the highest mean. The paper's rule keeps both, relevance_mass only the object.
    regions = np.ones((20, 20), dtype=np.int32)  # background: 298 pixels, relevance 0
    regions[5:15, 5:15] = 2  # object: 0.5 per pixel, 50 in all (~83%)
    regions[0, 0:2] = 3  # speck: 5 per pixel, 10 in all (~17%)
    relevance = np.select([regions == 2, regions == 3], [0.5, 5.0], default=0.0)
    relevance[19, 19] = -3.0  # negative relevance counts for nothing
    _, paper, _ = select_salient_regions(regions, relevance, "paper")
    assert paper.tolist() == [2, 3]
    _, mass, mask = select_salient_regions(regions, relevance, "relevance_mass", min_share=0.2)
    assert mass.tolist() == [2] and np.array_equal(mask, regions == 2)
    # At a 10% share the speck's 1/6 of the mass is enough again.
    assert select_salient_regions(regions, relevance, min_share=0.1)[1].tolist() == [2, 3]
    assert select_salient_regions(regions, relevance, min_share=0.0)[1].tolist() == [2, 3]


@pytest.mark.parametrize(
    "rule, share, key",
    [
        ("other", 0.1, "step2.selection"),
        ("relevance_mass", 1.0, "step2.min_share"),
        ("relevance_mass", -0.1, "step2.min_share"),
    ],
)
def test_bad_selection_settings_are_named(rule, share, key):
    with pytest.raises(ValueError, match=key):
        select_salient_regions(np.ones((3, 3), dtype=np.int32), np.ones((3, 3)), rule, share)


@pytest.mark.parametrize("relevance_value", [0.0, 1.0])
def test_constant_relevance_selects_nothing(relevance_value):
    regions = np.repeat(np.arange(1, 5), 5).reshape(2, 10)
    _, labels, mask = select_salient_regions(regions, np.full(regions.shape, relevance_value))
    assert labels.size == 0 and not mask.any()


def test_no_region_selects_nothing():
    scores, labels, mask = select_salient_regions(np.zeros((3, 3), dtype=np.int32), np.ones((3, 3)))
    assert labels.size == 0 and not mask.any()


def object_scene():
    """Background (small affine) and one object moving 4 px right, relevant where it moves."""
    layers = np.ones(SHAPE, dtype=np.int32)
    layers[80:160, 100:200] = 2
    flow = layered_flow(layers, [BACKGROUND * 0.1, np.array([[4.0, 0, 0], [0, 0, 0]])])
    flow += np.random.default_rng(0).uniform(-0.01, 0.01, flow.shape).astype(np.float32)
    relevance = np.where(layers == 2, 1.0, 0.01)
    return flow, relevance, layers == 2


def test_hierarchical_step_finds_the_relevant_object():
    flow, relevance, truth = object_scene()
    result = hierarchical_step(flow, relevance, beta=1.6, scale="std")
    # A few object pixels land in small leftover layers below min_region.
    assert (result.salient_mask & truth).sum() / (result.salient_mask | truth).sum() > 0.98
    assert result.layers.max() >= 2


def slow_object_scene():
    """A large object (a quarter of the frame) moving 1.5 px against a still background: the
    std scale at the paper's beta puts it into the first layer with the background (the object
    inflates the scale it is judged by: 0.5 * 1.5 / 0.65 < 1.6)."""
    layers = np.ones(SHAPE, dtype=np.int32)
    layers[60:180, 80:240] = 2
    flow = layered_flow(layers, [np.zeros((2, 3)), np.array([[1.5, 0, 0], [0, 0, 0]])])
    return flow, np.where(layers == 2, 1.0, 0.01), layers == 2


def test_residual_split_gives_a_swallowed_object_its_own_region():
    flow, relevance, truth = slow_object_scene()
    paper = hierarchical_step(flow, relevance, beta=1.6, residual_split=False, parallax_ratio=None)
    assert (paper.layers == 1).all()  # the object is swallowed by the first layer
    assert not paper.salient_mask.any()
    split = hierarchical_step(flow, relevance, beta=1.6, residual_split=True, parallax_ratio=None)
    assert np.array_equal(split.layers, paper.layers)  # the layers themselves are the paper's
    assert np.array_equal(split.salient_mask, truth)


def test_residual_split_labels_known_answer():
    flow = np.zeros((4, 6, 2), dtype=np.float32)
    flow[1:3, 1:3, 0] = 2.0  # 4 pixels 2 px off the (still) dominant motion
    layers = np.ones((4, 6), dtype=np.int32)
    layers[:, 4:] = 2
    dominant = fit_affine(np.zeros((4, 6, 2), dtype=np.float32))
    expected = np.array(
        [[2, 2, 2, 2, 4, 4], [2, 3, 3, 2, 4, 4], [2, 3, 3, 2, 4, 4], [2, 2, 2, 2, 4, 4]]
    )
    np.testing.assert_array_equal(
        residual_split_layers(layers, dominant.residual_magnitude(flow)), expected
    )


def test_light_step_finds_the_relevant_object():
    flow, relevance, truth = object_scene()
    result = light_step(flow, relevance, alpha1=-0.01, alpha2=4, candidates="projection")
    assert np.array_equal(result.salient_mask, truth)


def test_light_step_projection_readings():
    flow, relevance, truth = object_scene()
    # Literal reading in pixels: w.m/|m| - 1 with |m| = 4 px: object points project to 3.
    paper = {"candidates": "projection", "alpha1": 2.5, "alpha2": 3.5}
    literal = light_step(flow, relevance, projection="literal", **paper)
    assert np.array_equal(literal.salient_mask, truth)
    normalised = light_step(flow, relevance, **paper)
    assert not normalised.salient_mask.any()  # normalised value is 0, outside (2.5, 3.5)
    with pytest.raises(ValueError, match="projection"):
        light_step(flow, relevance, projection="other")


@pytest.mark.parametrize(
    "method, options, key",
    [
        ("hierarchical", {"beta": 0}, "step2.beta"),
        ("hierarchical", {"beta": -1.0}, "step2.beta"),
        ("hierarchical", {"min_outliers": -1}, "step2.min_outliers"),
        ("hierarchical", {"scale": "iqr"}, "step2.scale"),
        ("light", {"alpha1": 4, "alpha2": 4}, "step2.alpha1"),
        ("light", {"alpha1": 1, "alpha2": -1}, "step2.alpha1"),
        ("epipolar", {"min_distance": 0}, "step2.min_distance"),
        ("epipolar", {"noise_factor": -1.0}, "step2.noise_factor"),
    ],
)
def test_wrong_thresholds_name_the_key(method, options, key):
    flow, relevance, _ = object_scene()
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        segment(flow, relevance, {"name": method, **options})


@pytest.mark.parametrize("method", ["epipolar", "hierarchical", "light"])
def test_bad_flow_and_relevance_are_clear_errors(method):
    flow, relevance, _ = object_scene()
    bad = flow.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment(bad, relevance, {"name": method})
    with pytest.raises(ValueError, match="relevance shape"):
        segment(flow, relevance[:-1], {"name": method})
    with pytest.raises(ValueError, match="NaN"):
        segment(flow, np.full(SHAPE, np.inf), {"name": method})


@pytest.mark.parametrize("method", ["epipolar", "hierarchical", "light"])
def test_degenerate_frames_have_defined_results(method):
    one_pixel = segment(np.ones((1, 1, 2), np.float32), np.ones((1, 1)), {"name": method})
    assert not one_pixel.salient_mask.any()
    zero_flow = segment(
        np.zeros((20, 30, 2), np.float32),
        np.random.default_rng(0).random((20, 30)),
        {"name": method},
    )
    assert zero_flow.salient_mask.shape == (20, 30)
    if method == "hierarchical":
        assert zero_flow.layers.max() == 1


def test_registry_names():
    assert STEP2_METHODS.names() == ["epipolar", "hierarchical", "light"]


def test_fast_pipeline_matches_the_literal_scikit_learn_one():
    # Two layers: with a 40% coherent group inside the remaining points (3 nested layers),
    # scikit-learn's jointly estimated scale lets its Huber fit settle between the two
    # motions, while our median start and MAD scale stay on the majority.
    layers, motions = nested_layers(2)
    flow = layered_flow(layers, motions)
    flow += np.random.default_rng(5).uniform(-0.1, 0.1, flow.shape).astype(np.float32)
    relevance = np.where(layers == 2, 1.0, 0.1)
    literal_layers, literal_salient, literal_saliency = hierarchical_step_sklearn(
        flow, relevance, scale="mad"
    )
    fast = hierarchical_step(
        flow,
        relevance,
        beta=1.6,
        scale="mad",
        residual_split=False,
        parallax_ratio=None,
        evidence="relevance",
        stride=1,
    )
    assert grouping_accuracy(literal_layers, fast.layers) > 0.999
    assert np.array_equal(fast.salient_mask, literal_salient)
    assert literal_salient.sum() == (layers == 2).sum()
    saliency = saliency_map(flow, fast.salient_mask).saliency
    np.testing.assert_allclose(saliency, literal_saliency, atol=2e-3)


def test_light_step_picks_the_wrong_way_walker_not_the_crowd():
    # 100 walkers (6x12 px) moving right over a panning background and one walking the other
    # way; the relevance is mostly on the wrong-way walker, some on every walker, plus noise.
    rng = np.random.default_rng(3)
    height, width = 240, 400
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = 0.5  # camera pan
    odd = np.zeros((height, width), bool)
    odd[100:112, 180:186] = True
    taken = np.zeros_like(odd)
    taken[96:116, 176:190] = True  # the crowd keeps clear of the wrong-way walker
    crowd = np.zeros_like(odd)
    while crowd.sum() < 100 * 72:
        y, x = int(rng.integers(0, height - 12)), int(rng.integers(0, width - 6))
        if taken[max(0, y - 2) : y + 14, max(0, x - 2) : x + 8].any():
            continue
        crowd[y : y + 12, x : x + 6] = taken[y : y + 12, x : x + 6] = True
        flow[y : y + 12, x : x + 6] = (2.5 + rng.normal(0, 0.1), rng.normal(0, 0.1))
    flow[odd] = (-1.5, 0.3)
    relevance = rng.normal(0, 0.002, (height, width))
    relevance[crowd] += 0.05
    relevance[odd] += 1.0
    mask = light_step(flow, relevance).salient_mask
    assert (mask & odd).sum() / (mask | odd).sum() > 0.9
    assert not (mask & crowd).any()


def test_spread_samples_gives_each_pixel_the_sample_heading_its_block():
    samples = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    expected = np.array([[1, 1, 2, 2, 3], [1, 1, 2, 2, 3], [4, 4, 5, 5, 6]], dtype=np.int32)
    np.testing.assert_array_equal(spread_samples(samples, 2, (3, 5)), expected)


def test_a_motion_fitted_on_samples_reads_back_at_pixel_coordinates():
    flow = layered_flow(np.ones(SHAPE, dtype=np.int32), [BACKGROUND])
    on_samples = fit_affine(np.ascontiguousarray(flow[::3, ::3]))
    np.testing.assert_allclose(on_samples.on_grid_of_stride(3).params, BACKGROUND, atol=1e-5)


@pytest.mark.parametrize("stride", [2, 4])
def test_layers_on_sampled_pixels_find_the_objects_of_every_pixel(stride):
    # Box edges on multiples of 8: every block of stride x stride pixels lies in one layer.
    layers, motions = nested_layers(3)
    flow = layered_flow(layers, motions)
    relevance = np.where(layers == 3, 1.0, 0.01)
    every = hierarchical_step(flow, relevance, beta=1.6, stride=1, parallax_ratio=None)
    sampled = hierarchical_step(flow, relevance, beta=1.6, stride=stride, parallax_ratio=None)
    assert grouping_accuracy(every.layers, sampled.layers) == 1.0
    np.testing.assert_array_equal(sampled.salient_mask, every.salient_mask)
    np.testing.assert_array_equal(sampled.salient_mask, layers == 3)
    # Each motion is a Huber fit's fixed point on its own point sample (the first layer's
    # holds the other layers as outliers), reached to the fits' tolerance: the two agree
    # to a hundredth of a pixel everywhere, far below any flow's accuracy.
    for coarse, fine in zip(sampled.layer_motions, every.layer_motions, strict=True):
        assert np.abs(coarse.flow(SHAPE) - fine.flow(SHAPE)).max() < 0.01


def two_movers_scene():
    """A fast mover (4 px against the still background) under little relevance, and a slow
    one (0.5 px) under much: layers 2 and 3 of the returned layer map."""
    layers = np.ones(SHAPE, dtype=np.int32)
    layers[30:90, 30:110] = 2  # fast
    layers[150:210, 200:280] = 3  # slow
    motions = [
        np.zeros((2, 3)),
        np.array([[4.0, 0, 0], [0, 0, 0]]),
        np.array([[0.5, 0, 0], [0, 0, 0]]),
    ]
    relevance = np.select([layers == 2, layers == 3], [0.02, 1.0], 0.0)
    return layered_flow(layers, motions), relevance, layers


def test_relevance_times_residual_keeps_the_mover_the_relevance_alone_undervalues():
    flow, relevance, layers = two_movers_scene()
    options = {"beta": 1.6, "scale": "mad", "min_share": 0.05, "parallax_ratio": None}
    alone = hierarchical_step(flow, relevance, evidence="relevance", **options)
    weighed = hierarchical_step(flow, relevance, evidence="relevance_x_residual", **options)
    # relevance alone: the fast mover holds 0.02 * 4800 / (0.02 * 4800 + 4800) = 2% < 5%
    np.testing.assert_array_equal(alone.salient_mask, layers == 3)
    # weighed by the residual: 0.08 against 0.5 per pixel, 14% of the mass: both kept
    np.testing.assert_array_equal(weighed.salient_mask, layers >= 2)
    with pytest.raises(ValueError, match="step2.evidence"):
        hierarchical_step(flow, relevance, evidence="residual", **options)
    with pytest.raises(ValueError, match="step2.stride"):
        hierarchical_step(flow, relevance, stride=0, **options)


def test_which_step2_nodes_weigh_the_relevance_by_the_residual():
    assert weighs_by_residual({"name": "hierarchical"})  # the step's default
    assert weighs_by_residual({"name": "hierarchical", "evidence": "relevance_x_residual"})
    assert not weighs_by_residual({"name": "hierarchical", "evidence": "relevance"})
    assert not weighs_by_residual({"name": "light"})
