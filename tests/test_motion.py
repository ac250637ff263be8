import numpy as np
import pytest

from nims.motion import fit_affine, fit_affine_points, pixel_grid
from nims.reference import fit_affine_sklearn
from nims.robust import robust_scale
from nims.synthetic.pairs import affine_field

SHAPE = (120, 200)
TRUE = np.array([[1.5, 0.004, -0.002], [-0.7, 0.001, 0.006]])


def noisy_field(seed=0, noise=0.05, outlier_fraction=0.2, kind="scattered"):
    """True affine background + Gaussian noise + outliers.

    ``scattered``: random pixels with random flow in [-10, 10] px (gross errors);
    ``block``: a centred band of rows moving by (6, -3) px (a coherent object, one-sided).
    """
    rng = np.random.default_rng(seed)
    flow = affine_field(TRUE, SHAPE) + rng.normal(0, noise, SHAPE + (2,)).astype(np.float32)
    if kind == "scattered":
        outliers = rng.random(SHAPE) < outlier_fraction
        flow[outliers] = rng.uniform(-10, 10, (outliers.sum(), 2))
    else:
        outliers = np.zeros(SHAPE, dtype=bool)
        rows = int(round(outlier_fraction * SHAPE[0]))
        start = (SHAPE[0] - rows) // 2
        outliers[start : start + rows, :] = True
        flow[outliers] += np.array([6.0, -3.0], dtype=np.float32)
    return flow, outliers


def test_exact_affine_field_is_recovered():
    motion = fit_affine(affine_field(TRUE, SHAPE))
    np.testing.assert_allclose(motion.params, TRUE, atol=1e-5)
    np.testing.assert_allclose(motion.flow(SHAPE), affine_field(TRUE, SHAPE), atol=1e-4)


@pytest.mark.parametrize("kind", ["scattered", "block"])
def test_twenty_percent_outliers_within_five_hundredths_of_a_pixel(kind):
    flow, outliers = noisy_field(noise=0.05, outlier_fraction=0.2, kind=kind)
    assert abs(outliers.mean() - 0.2) < 0.01
    motion = fit_affine(flow)
    assert np.abs(motion.flow(SHAPE) - affine_field(TRUE, SHAPE)).max() < 0.05
    least_squares = fit_affine(flow, epsilon=1e6)  # a huge threshold: plain least squares
    assert np.abs(least_squares.flow(SHAPE) - affine_field(TRUE, SHAPE)).max() > 0.2


def test_coherent_outliers_bias_huber_by_a_fraction_of_the_noise():
    # Huber is not redescending: a coherent 20% block pulls the fit by about half the noise
    # scale. Documented behaviour, bounded here so that a regression shows.
    flow, _ = noisy_field(noise=0.1, outlier_fraction=0.2, kind="block")
    error = np.abs(fit_affine(flow).flow(SHAPE) - affine_field(TRUE, SHAPE)).max()
    assert 0.01 < error < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn_huber_regressor(seed):
    # Both minimise the Huber loss with epsilon 1.35. scikit-learn estimates the scale jointly
    # and we use the MAD; with symmetric gross errors neither is biased and the two estimates
    # differ by sampling noise, ~ sigma / sqrt(N) = 0.1 / 155 px: we require 0.01 px everywhere.
    flow, _ = noisy_field(seed=seed, noise=0.1, outlier_fraction=0.15)
    mask = np.ones(SHAPE, dtype=bool)
    ours = fit_affine(flow, mask)
    oracle = fit_affine_sklearn(flow, mask)
    assert np.abs(ours.flow(SHAPE) - oracle.flow(SHAPE)).max() < 0.01


def test_mask_restricts_the_fit():
    flow, outliers = noisy_field(noise=0.02, outlier_fraction=0.4)
    motion = fit_affine(flow, ~outliers)
    assert np.abs(motion.flow(SHAPE) - affine_field(TRUE, SHAPE)).max() < 0.02


def test_weights_select_points():
    flow, outliers = noisy_field(noise=0.02, outlier_fraction=0.45)
    # Weights that mostly ignore the outliers make the fit as good as masking them out.
    motion = fit_affine(flow, weights=np.where(outliers, 1e-4, 1.0))
    assert np.abs(motion.flow(SHAPE) - affine_field(TRUE, SHAPE)).max() < 0.02


def test_large_input_uses_coarse_then_full_stage():
    shape = (480, 854)
    rng = np.random.default_rng(1)
    flow = affine_field(TRUE, shape) + rng.normal(0, 0.05, shape + (2,)).astype(np.float32)
    motion = fit_affine(flow)
    assert np.abs(motion.flow(shape) - affine_field(TRUE, shape)).max() < 0.01
    np.testing.assert_allclose(motion.scale, 0.05, rtol=0.05)


def test_zero_flow_gives_zero_model():
    motion = fit_affine(np.zeros((30, 40, 2), dtype=np.float32))
    np.testing.assert_allclose(motion.params, 0, atol=1e-9)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_points_is_a_clear_error(count):
    mask = np.zeros(SHAPE, dtype=bool)
    mask.ravel()[:count] = True
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_affine(np.zeros(SHAPE + (2,)), mask)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        fit_affine_points([0, 1, 2], [0, 1, 0], [0, np.nan, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="lengths differ"):
        fit_affine_points([0, 1, 2], [0, 1], [0, 1, 2], [0, 0, 0])
    with pytest.raises(ValueError, match="mask shape"):
        fit_affine(np.zeros((4, 4, 2)), np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="weights are all zero"):
        fit_affine(np.zeros((4, 4, 2)), weights=np.zeros((4, 4)))


def test_collinear_points_still_give_a_defined_model():
    x = np.arange(10.0)
    motion = fit_affine_points(x, np.zeros(10), 2 + 0.1 * x, np.zeros(10))
    np.testing.assert_allclose(motion.at(x, np.zeros(10))[:, 0], 2 + 0.1 * x, atol=1e-4)


def test_robust_scale_of_gaussian_residuals():
    residuals = np.random.default_rng(0).normal(0, 2.0, 200000)
    assert robust_scale(residuals, "mad") == pytest.approx(2.0, rel=0.03)
    assert robust_scale(residuals, "std") == pytest.approx(2.0, rel=0.01)
    assert robust_scale(np.zeros(10), "mad") > 0
    with pytest.raises(ValueError, match="std' or 'mad"):
        robust_scale(residuals, "iqr")


def test_pixel_grid_is_raster_order():
    cols, rows = pixel_grid(2, 3)
    assert cols.tolist() == [0, 1, 2, 0, 1, 2] and rows.tolist() == [0, 0, 0, 1, 1, 1]
