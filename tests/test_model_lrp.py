"""Classifier, folded interpretation network and LRP rules, against literal references."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nims import attribution
from nims.attribution import lrp as propagation
from nims.attribution import rules
from nims.folding import FoldedBlock, fold
from nims.model import MotionClassifier

INPUT = (16, 24)


def random_model(norm="batch", seed=0, negative_scales=True):
    torch.manual_seed(seed)
    model = MotionClassifier(INPUT, channels=(4, 6, 8), kernel_sizes=(5, 3, 3), norm=norm)
    with torch.no_grad():
        for layer in model.norms:
            size = layer.weight.shape[0]
            scale = torch.rand(size) + 0.5
            if negative_scales:
                scale[::2] *= -1
            layer.weight.copy_(scale)
            layer.bias.copy_(torch.randn(size) * 0.5)
            if norm == "batch":
                layer.running_mean.copy_(torch.randn(size))
                layer.running_var.copy_(torch.rand(size) * 3 + 0.2)
        model.fc.weight.mul_(5)
    return model.eval()


def random_flow(batch=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    flow = torch.randn(batch, 2, *INPUT, generator=generator) * 3
    flow[:, :, 0, :] += 8  # strong values on the borders: the zero padding matters there
    flow[:, :, :, -1] -= 8
    return flow


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("negative_scales", [False, True])
def test_folded_network_gives_the_same_logits(norm, negative_scales):
    model = random_model(norm, negative_scales=negative_scales)
    flow = random_flow()
    with torch.no_grad():
        expected = model(flow)
        folded = fold(model, flow).forward(flow)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(folded, expected, atol=1e-5, rtol=1e-5)


def test_instance_norm_folds_per_sample():
    model = random_model("instance")
    flow = random_flow()
    flow[1] *= 10  # another magnitude: another fold
    network = fold(model, flow)
    assert network.blocks[0].weight.shape[0] == 3
    assert not torch.allclose(network.blocks[0].weight[0], network.blocks[0].weight[1])
    with torch.no_grad():
        torch.testing.assert_close(network.forward(flow), model(flow), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="per sample"):
        fold(model)


def test_batch_norm_must_be_folded_in_eval_mode():
    model = random_model().train()
    with pytest.raises(ValueError, match="eval mode"):
        fold(model)


def test_instance_norm_makes_the_classifier_magnitude_invariant():
    model = random_model("instance", negative_scales=False)
    flow = random_flow()
    with torch.no_grad():
        torch.testing.assert_close(model(flow * 4), model(flow), atol=1e-4, rtol=1e-4)


# Literal, per-output re-implementations of each rule.


def literal_zplus_linear(x, weight, relevance):
    out = torch.zeros_like(x)
    for sample in range(x.shape[0]):
        denominator = sum(x[sample, i] * max(weight[i], 0) for i in range(x.shape[1]))
        for i in range(x.shape[1]):
            out[sample, i] = x[sample, i] * max(weight[i], 0) / denominator * relevance[sample]
    return out


def conv_taps(weight, height, width, padding):
    """(c_out, y, x, c_in, y_in, x_in, w) for every tap of a zero-padded convolution."""
    c_out, c_in, size, _ = weight.shape
    for o, y, x in itertools.product(range(c_out), range(height), range(width)):
        for i, dy, dx in itertools.product(range(c_in), range(size), range(size)):
            y_in, x_in = y + dy - padding, x + dx - padding
            if 0 <= y_in < height and 0 <= x_in < width:
                yield o, y, x, i, y_in, x_in, float(weight[o, i, dy, dx])


def literal_conv_rule(x, weight, relevance, contribution):
    """R_i = sum_j contribution(x_i, w_ij) / sum_i' contribution(x_i', w_i'j) * R_j."""
    _, height, width = x.shape
    taps = list(conv_taps(weight, height, width, weight.shape[-1] // 2))
    totals = {}
    for o, y, xx, i, yi, xi, w in taps:
        totals[o, y, xx] = totals.get((o, y, xx), 0.0) + contribution(i, yi, xi, w)
    out = torch.zeros_like(x)
    for o, y, xx, i, yi, xi, w in taps:
        out[i, yi, xi] += contribution(i, yi, xi, w) / totals[o, y, xx] * relevance[o, y, xx]
    return out


def tiny_block(seed=0, c_in=2, c_out=3, size=3):
    torch.manual_seed(seed)
    return FoldedBlock(torch.randn(c_out, c_in, size, size), torch.randn(c_out), size // 2)


def test_zplus_linear_matches_the_literal_rule():
    torch.manual_seed(0)
    x, weight, relevance = torch.rand(2, 7), torch.randn(7), torch.randn(2)
    torch.testing.assert_close(
        rules.ZPlus().linear(x, weight, relevance),
        literal_zplus_linear(x, weight, relevance),
        atol=1e-5,
        rtol=1e-4,
    )


def test_zplus_conv_matches_the_literal_rule():
    block = tiny_block()
    torch.manual_seed(1)
    x, relevance = torch.rand(1, 2, 5, 6), torch.rand(1, 3, 5, 6)
    expected = literal_conv_rule(
        x[0], block.weight, relevance[0], lambda i, y, xx, w: float(x[0, i, y, xx]) * max(w, 0.0)
    )
    torch.testing.assert_close(
        rules.ZPlus().conv(block, x, relevance)[0], expected, atol=1e-5, rtol=1e-4
    )


def test_zbeta_conv_matches_the_literal_rule():
    block = tiny_block(seed=2)
    torch.manual_seed(3)
    x = torch.randn(1, 2, 5, 6)
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    relevance = torch.rand(1, 3, 5, 6)

    def contribution(i, y, xx, w):
        return (
            float(x[0, i, y, xx]) * w
            - float(low[0, i]) * max(w, 0.0)
            - float(high[0, i]) * min(w, 0.0)
        )

    expected = literal_conv_rule(x[0], block.weight, relevance[0], contribution)
    torch.testing.assert_close(
        rules.ZBeta().conv(block, x, relevance, (low, high))[0], expected, atol=1e-5, rtol=1e-4
    )


def test_maxpool_gives_all_relevance_to_the_winner():
    pre_pool = torch.tensor([[[[1.0, 5.0, 0.0, 0.0], [2.0, 3.0, 0.0, 9.0]]]])
    relevance = torch.tensor([[[[0.7, 0.3]]]])
    expected = torch.tensor([[[[0.0, 0.7, 0.0, 0.0], [0.0, 0.0, 0.0, 0.3]]]])
    torch.testing.assert_close(propagation.maxpool_winner_takes_all(pre_pool, relevance), expected)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_relevance_is_conserved(norm):
    model = random_model(norm, seed=4)
    flow = random_flow(batch=4, seed=5)
    result = propagation.lrp(model, flow)
    assert result.per_channel.shape == (4, 2, *INPUT) and result.relevance.shape == (4, *INPUT)
    sums = result.per_channel.sum(dim=(1, 2, 3))
    torch.testing.assert_close(sums, result.logits, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unit_start_is_the_logit_map_divided_by_the_logit(norm):
    model = random_model(norm, seed=4)
    flow = random_flow(batch=4, seed=5)
    from_logit = propagation.lrp(model, flow, {"start": "logit"})
    unit = propagation.lrp(model, flow, {"start": "unit"})
    torch.testing.assert_close(unit.logits, from_logit.logits)
    torch.testing.assert_close(
        unit.per_channel.sum(dim=(1, 2, 3)), torch.ones(4), rtol=1e-4, atol=1e-6
    )
    expected = from_logit.per_channel / from_logit.logits[:, None, None, None]
    torch.testing.assert_close(unit.per_channel, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="lrp_rules.start"):
        propagation.lrp(model, flow, {"start": "decision"})


def relevance_with_norm_passed_through(model, flow):
    """LRP on the original network: relevance crosses each normalisation unchanged, the rules
    use the unfolded convolution weights."""
    with torch.no_grad():
        activations, pre_pools = [], []
        x = flow
        for conv, norm in zip(model.convs, model.norms, strict=True):
            activations.append(x)
            pre = torch.relu(norm(conv(x)))
            pre_pools.append(pre)
            x = torch.nn.functional.max_pool2d(pre, 2)
        logits = model.fc(x.flatten(1))[:, 0]
        relevance = rules.ZPlus().linear(x.flatten(1), model.fc.weight[0], logits).reshape(x.shape)
        low = flow.amin(dim=(2, 3), keepdim=True)
        high = flow.amax(dim=(2, 3), keepdim=True)
        for index in reversed(range(3)):
            block = FoldedBlock(
                model.convs[index].weight, model.convs[index].bias, model.convs[index].padding[0]
            )
            relevance = propagation.maxpool_winner_takes_all(pre_pools[index], relevance)
            if index == 0:
                relevance = rules.ZBeta().conv(block, activations[0], relevance, (low, high))
            else:
                relevance = rules.ZPlus().conv(block, activations[index], relevance)
    return relevance


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_folded_lrp_equals_lrp_through_the_normalisation_for_positive_scales(norm):
    # With a positive scale per channel the folded weights are the original ones times a
    # positive factor per output channel, which cancels in every rule's ratio.
    model = random_model(norm, seed=6, negative_scales=False)
    flow = random_flow(batch=2, seed=7)
    torch.testing.assert_close(
        propagation.lrp(model, flow).per_channel,
        relevance_with_norm_passed_through(model, flow),
        atol=1e-5,
        rtol=1e-4,
    )


def test_negative_scales_make_the_two_readings_differ():
    model = random_model("batch", seed=6, negative_scales=True)
    flow = random_flow(batch=2, seed=7)
    assert not torch.allclose(
        propagation.lrp(model, flow).per_channel,
        relevance_with_norm_passed_through(model, flow),
        atol=1e-3,
    )


def test_fixed_and_dataset_bounds():
    model = random_model()
    flow = random_flow(batch=2)
    fixed = propagation.lrp(
        model, flow, rules={"bounds": "fixed", "low": [-30, -30], "high": [30, 30]}
    )
    torch.testing.assert_close(
        fixed.per_channel.sum(dim=(1, 2, 3)), fixed.logits, rtol=1e-4, atol=1e-6
    )
    with pytest.raises(ValueError, match="lrp_rules.low"):
        propagation.lrp(model, flow, rules={"bounds": "fixed"})
    with pytest.raises(ValueError, match="bounds=dataset"):
        propagation.lrp(model, flow, rules={"bounds": "dataset"})
    model.input_low.copy_(torch.tensor([-30.0, -30.0]))
    model.input_high.copy_(torch.tensor([30.0, 30.0]))
    dataset = propagation.lrp(model, flow, rules={"bounds": "dataset"})
    torch.testing.assert_close(dataset.per_channel, fixed.per_channel)
    with pytest.raises(ValueError, match="unknown LRP rule 'flat'"):
        propagation.lrp(model, flow, rules={"first_layer": "flat"})
    with pytest.raises(ValueError, match="zbeta is a rule for the first convolution"):
        propagation.lrp(model, flow, rules={"other_layers": "zbeta"})


def test_epsilon_rule_matches_its_literal_formula():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, generator=generator)
    weight = torch.randn(5, generator=generator)
    relevance = torch.tensor([1.5, -0.5])
    expected = torch.zeros(2, 5)
    for sample in range(2):
        z = float(sum(x[sample, i] * weight[i] for i in range(5)))
        denominator = z + 1e-2 * (1 if z >= 0 else -1)
        for i in range(5):
            expected[sample, i] = x[sample, i] * weight[i] / denominator * relevance[sample]
    torch.testing.assert_close(rules.Epsilon().linear(x, weight, relevance), expected)


def test_the_config_picks_the_rules():
    model = random_model()
    flow = random_flow(batch=2)
    paper = propagation.lrp(model, flow)
    epsilon = propagation.lrp(
        model, flow, rules={"first_layer": "epsilon", "other_layers": "epsilon"}
    )
    assert torch.isfinite(epsilon.per_channel).all()
    assert not torch.allclose(paper.per_channel, epsilon.per_channel, atol=1e-4)


@pytest.mark.parametrize("name", ["gradient_x_input", "integrated_gradients"])
def test_gradient_attributions(name):
    model = random_model(seed=8)
    flow = random_flow(batch=2, seed=9)
    result = attribution.attribute(model, flow, {"name": name})
    assert result.per_channel.shape == flow.shape
    if name == "integrated_gradients":
        # Completeness: attributions sum to f(x) - f(baseline) (midpoint rule, 32 steps).
        with torch.no_grad():
            difference = model(flow) - model(torch.zeros_like(flow))
        torch.testing.assert_close(
            result.per_channel.sum(dim=(1, 2, 3)), difference, rtol=0.05, atol=0.05
        )


@pytest.mark.parametrize("name", ["lrp", "gradient_x_input"])
def test_mirrored_copies_decide_and_the_flow_itself_is_explained(name):
    flips = 4
    model = random_model(seed=12)
    flow = random_flow(batch=2, seed=13)
    averaged = attribution.attribute(model, flow, {"name": name}, flips)
    alone = attribution.attribute(model, flow, {"name": name})
    torch.testing.assert_close(averaged.per_channel, alone.per_channel)
    # Literal reference of the decision: the classifier on each mirror image, averaged.
    mirrors = [(False, False), (True, False), (False, True), (True, True)]
    logits = 0
    for horizontal, vertical in mirrors:
        copy = flow.clone()
        if horizontal:
            copy = copy.flip(3)
            copy[:, 0] *= -1
        if vertical:
            copy = copy.flip(2)
            copy[:, 1] *= -1
        with torch.no_grad():
            logits = logits + model(copy)
    torch.testing.assert_close(averaged.logits, logits / flips, rtol=1e-4, atol=1e-4)


def test_four_mirrors_make_the_decision_mirror_invariant():
    model = random_model(seed=14)
    flow = random_flow(batch=2, seed=15)
    options = {"name": "lrp"}
    plain = attribution.attribute(model, flow, options, flips=4)
    for horizontal, vertical in ((True, False), (False, True), (True, True)):
        mirror = attribution.mirrored(flow, horizontal, vertical)
        torch.testing.assert_close(
            attribution.attribute(model, mirror, options, flips=4).logits, plain.logits
        )
    alone = attribution.attribute(model, attribution.mirrored(flow, True, False), {"name": "lrp"})
    assert not torch.allclose(alone.logits, plain.logits)  # one pass is not invariant
    with pytest.raises(ValueError, match="decision.flips"):
        attribution.attribute(model, flow, {"name": "lrp"}, flips=2)  # one mirror: not kept


def test_decision_window_is_the_centred_mean_of_the_logits():
    logits = np.array([1.0, -2.0, 4.0, 0.5, -3.0])
    # Literal reference: each frame's window, truncated at the ends, averaged.
    expected = [np.mean(logits[max(0, index - 1) : index + 2]) for index in range(len(logits))]
    np.testing.assert_allclose(attribution.decision_logits(logits, 3), expected)
    five = [np.mean(logits[max(0, index - 2) : index + 3]) for index in range(len(logits))]
    np.testing.assert_allclose(attribution.decision_logits(logits, 5), five)
    np.testing.assert_array_equal(attribution.decision_logits(logits, 1), logits)
    np.testing.assert_allclose(attribution.decision_logits(logits[:1], 7), logits[:1])
    assert attribution.decision_logits(np.zeros(0), 3).shape == (0,)
    for window in (0, 2, -1):
        with pytest.raises(ValueError, match="decision.window"):
            attribution.decision_logits(logits, window)


def test_relevance_maps_at_the_flow_resolution():
    model = random_model(seed=11)
    flows = [np.random.default_rng(0).normal(size=(48, 72, 2)).astype(np.float32)] * 2
    result, maps = attribution.relevance_maps(model, flows)
    assert result.relevance.shape == (2, *INPUT)
    assert maps[0].shape == (48, 72) and maps[0].dtype == np.float32


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 3, 16, 24), r"\(B, 2, H, W\)"),
        ((2, 16, 24), r"\(B, 2, H, W\)"),
        ((1, 2, 32, 24), "resize"),
    ],
)
def test_bad_model_inputs_are_named(shape, message):
    model = random_model()
    with pytest.raises(ValueError, match=message):
        propagation.lrp(model, torch.zeros(shape))


def test_non_finite_flow_is_rejected():
    model = random_model()
    flow = random_flow(batch=1)
    flow[0, 1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(flow)
    with pytest.raises(ValueError, match="NaN"):
        attribution.to_model_input([np.full((8, 8, 2), np.inf, np.float32)], INPUT)


def test_classifier_rejects_bad_architectures():
    with pytest.raises(ValueError, match="multiples of 8"):
        MotionClassifier((20, 24))
    with pytest.raises(ValueError, match="model.norm"):
        MotionClassifier(norm="layer")
    with pytest.raises(ValueError, match="odd"):
        MotionClassifier(kernel_sizes=(4, 3, 3))
    assert isinstance(MotionClassifier(norm="instance").norms[0], nn.InstanceNorm2d)


def test_relevance_api_on_one_flow_field():
    model = random_model(seed=12)
    flow = np.random.default_rng(1).normal(size=(40, 60, 2)).astype(np.float32)
    relevance_map = attribution.relevance(model, flow)
    assert relevance_map.shape == (40, 60)
    _, maps = attribution.relevance_maps(model, [flow])
    np.testing.assert_array_equal(relevance_map, maps[0])
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        attribution.relevance(model, flow[..., :1])


@pytest.mark.parametrize("head", ["max", "mean"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pooling_heads_fold_and_conserve_relevance(norm, head):
    torch.manual_seed(13)
    model = MotionClassifier(INPUT, channels=(4, 6, 8), norm=norm, head=head).eval()
    with torch.no_grad():
        model.fc.weight.mul_(3)
    flow = random_flow(batch=3, seed=14)
    with torch.no_grad():
        torch.testing.assert_close(
            fold(model, flow).forward(flow), model(flow), atol=1e-5, rtol=1e-5
        )
    result = propagation.lrp(model, flow)
    torch.testing.assert_close(
        result.per_channel.sum(dim=(1, 2, 3)), result.logits, rtol=1e-4, atol=1e-6
    )


def test_global_max_gives_each_channel_relevance_to_its_winner():
    features = torch.tensor([[[[1.0, 3.0], [2.0, 0.0]], [[5.0, 0.0], [0.0, 4.0]]]])
    relevance = torch.tensor([[0.6, -0.2]])
    expected = torch.tensor([[[[0.0, 0.6], [0.0, 0.0]], [[-0.2, 0.0], [0.0, 0.0]]]])
    torch.testing.assert_close(
        propagation.global_max_winner_takes_all(features, relevance), expected
    )
    with pytest.raises(ValueError, match="model.head"):
        MotionClassifier(head="median")


def test_global_mean_shares_each_channel_relevance_by_activation():
    features = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    relevance = torch.tensor([[0.8, 0.5]])
    # channel 0: 1/4 and 3/4 of 0.8; channel 1 has no activation and passes nothing
    expected = torch.tensor([[[[0.2, 0.6], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    torch.testing.assert_close(propagation.global_mean_share(features, relevance), expected)


def test_shipped_checkpoints_load_as_plain_weights():
    from pathlib import Path

    from nims.model import load_checkpoint, load_classifier
    from nims.unet import load_unet

    for path in sorted(Path("checkpoints").glob("*.pt")):
        if load_checkpoint(path)["architecture"].get("model") == "unet":
            # The crowd experiment's supervised baseline, with its calibrated decision logit.
            unet = load_unet(path, expected_task="crowd")
            assert unet.input_size == (128, 224) and float(unet.decision_logit) > 0
        else:
            assert load_classifier(path).input_size == (96, 176)
