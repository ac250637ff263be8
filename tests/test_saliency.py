import numpy as np
import pytest

from nims.saliency import saliency_map
from nims.synthetic.pairs import affine_field, layered_flow

SHAPE = (120, 160)
BACKGROUND = np.array([[0.5, 0.003, -0.001], [-0.2, 0.001, 0.002]])


def scene(offset=(3.0, 4.0)):
    layers = np.ones(SHAPE, dtype=np.int32)
    layers[40:80, 60:100] = 2
    moving = BACKGROUND.copy()
    moving[:, 0] += offset
    return layered_flow(layers, [BACKGROUND, moving]), layers == 2


def test_saliency_is_the_exponential_of_the_motion_difference():
    flow, mask = scene(offset=(3.0, 4.0))  # |difference| = 5 px inside the object
    result = saliency_map(flow, mask, lam=0.15)
    np.testing.assert_allclose(result.saliency[mask], 1 - np.exp(-0.15 * 5), atol=1e-4)
    assert not result.saliency[~mask].any()
    np.testing.assert_allclose(result.inpainted_flow, affine_field(BACKGROUND, SHAPE), atol=1e-4)
    np.testing.assert_allclose(result.background_motion.params, BACKGROUND, atol=1e-5)


def test_saliency_grows_with_lambda_and_motion():
    flow, mask = scene(offset=(1.0, 0.0))
    low = saliency_map(flow, mask, lam=0.15).saliency[mask].mean()
    high = saliency_map(flow, mask, lam=1.0).saliency[mask].mean()
    faster = saliency_map(scene(offset=(4.0, 0.0))[0], mask, lam=0.15).saliency[mask].mean()
    assert 0 < low < high < 1 and low < faster


def test_empty_salient_mask_gives_zero_map_and_unchanged_flow():
    flow, mask = scene()
    result = saliency_map(flow, np.zeros_like(mask))
    assert not result.saliency.any() and result.background_motion is None
    np.testing.assert_array_equal(result.inpainted_flow, flow)


@pytest.mark.parametrize("lam", [0.0, -0.15])
def test_non_positive_lambda_is_rejected(lam):
    flow, mask = scene()
    with pytest.raises(ValueError, match="saliency.lam"):
        saliency_map(flow, mask, lam=lam)


def test_bad_masks_are_clear_errors():
    flow, mask = scene()
    with pytest.raises(ValueError, match="salient mask shape"):
        saliency_map(flow, mask[1:])
    with pytest.raises(ValueError, match="whole frame"):
        saliency_map(flow, np.ones_like(mask))
    bad = flow.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        saliency_map(bad, mask)
