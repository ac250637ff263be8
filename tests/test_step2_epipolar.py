"""Step 2, epipolar version: a camera translating through a scene with depth (near pole, far
wall) and one object moving on its own; the exact flow is written from the projection
formulas, independently of the module."""

from pathlib import Path

import numpy as np
import pytest

from nims.epipolar import fundamental_matrix, parallax_share, sampson_distance
from nims.step2 import segment
from nims.step2.epipolar import epipolar_outliers
from nims.step2.hierarchical import shows_parallax

HEIGHT, WIDTH, FOCAL = 120, 200, 150.0
POLE = (slice(0, HEIGHT), slice(40, 55))
MOVER = (slice(50, 75), slice(120, 150))


def translating_camera_scene(mover_motion=(0.0, 1.5), bend=0.0):
    """Exact flow ``(H, W, 2)`` of a camera moving by ``t`` (metres) past a wall whose depth
    grows left to right (6-12 m; a flat wall unless ``bend`` metres bulge it towards its
    middle), a pole at 2 m and a mover at 8 m that also moves by ``mover_motion`` pixels; the
    mover's mask."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x, y = cols - WIDTH / 2, rows - HEIGHT / 2
    depth = 6.0 + 6.0 * cols / WIDTH - bend * np.sin(np.pi * cols / WIDTH)
    depth[POLE] = 2.0
    depth[MOVER] = 8.0
    translation = np.array([0.15, 0.05, 0.3])
    point = np.stack([x * depth / FOCAL, y * depth / FOCAL, depth], axis=-1) - translation
    flow = np.stack(
        [FOCAL * point[..., 0] / point[..., 2] - x, FOCAL * point[..., 1] / point[..., 2] - y],
        axis=-1,
    )
    flow[MOVER] += mover_motion
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[MOVER] = True
    return flow.astype(np.float32), mask


def jaccard(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_sampson_distance_matches_its_formula_point_by_point():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(3, 3))
    flow = rng.normal(size=(4, 5, 2)).astype(np.float32)
    distance = sampson_distance(matrix, flow)
    for row in range(4):
        for col in range(5):
            x0 = np.array([col, row, 1.0])
            x1 = np.array([col + flow[row, col, 0], row + flow[row, col, 1], 1.0])
            forward, backward = matrix @ x0, matrix.T @ x1
            expected = abs(x1 @ forward) / np.sqrt(
                forward[0] ** 2 + forward[1] ** 2 + backward[0] ** 2 + backward[1] ** 2
            )
            assert distance[row, col] == pytest.approx(expected, rel=1e-6)


def test_static_points_lie_on_their_epipolar_lines_whatever_their_depth():
    flow, mask = translating_camera_scene()
    distance = sampson_distance(fundamental_matrix(flow), flow)
    assert np.median(distance[~mask]) < 1e-3
    assert np.median(distance[POLE]) < 1e-3  # 4x the wall's parallax, still on its lines
    assert np.median(distance[mask]) > 0.3


def test_a_mover_within_ransacs_threshold_is_trimmed_out_of_the_fit():
    # 0.15 px off its line, well inside RANSAC's 0.5 px: the trimmed refits leave it out, so
    # the static points keep their exact geometry and the mover stands out.
    flow, mask = translating_camera_scene(mover_motion=(0.0, 0.15))
    distance = sampson_distance(fundamental_matrix(flow), flow)
    assert np.median(distance[~mask]) < 1e-5
    assert np.median(distance[mask]) > 0.05
    assert jaccard(epipolar_outliers(flow), mask) > 0.9


def test_the_mover_is_the_outlier_not_the_parallax_pole():
    flow, mask = translating_camera_scene()
    outliers = epipolar_outliers(flow)
    assert jaccard(outliers, mask) > 0.9
    assert outliers[POLE].mean() < 0.01


def test_relevance_selects_the_mover_among_the_candidate_regions():
    flow, mask = translating_camera_scene()
    relevance = np.full(mask.shape, 0.01)
    relevance[mask] = 1.0
    result = segment(flow, relevance, {"name": "epipolar"})
    assert jaccard(result.salient_mask, mask) > 0.9
    assert not result.salient_mask[POLE].any()


def test_a_mover_sliding_along_its_epipolar_line_is_invisible():
    # The known blind spot: extra motion along the line through the epipole looks like depth.
    flow, mask = translating_camera_scene(mover_motion=(0.0, 0.0))
    assert epipolar_outliers(flow)[mask].mean() < 0.01


def test_the_selection_weighs_the_relevance_by_the_distance_to_the_epipolar_lines():
    flow, mask = translating_camera_scene(bend=4.0)
    relevance = np.full(mask.shape, 0.01)
    relevance[POLE] = 0.2  # the classifier sees the near pole's large flow ...
    relevance[mask] = 0.005  # ... and barely the mover, below the background's mean relevance
    weighted = segment(flow, relevance, {"name": "epipolar"})
    assert jaccard(weighted.salient_mask, mask) > 0.9 and not weighted.salient_mask[POLE].any()
    alone = segment(flow, relevance, {"name": "epipolar", "evidence": "relevance"})
    assert np.array_equal(alone.candidate_regions, weighted.candidate_regions)
    assert not alone.salient_mask.any()  # the paper's rule: below the largest region's mean
    with pytest.raises(ValueError, match=r"step2\.evidence"):
        segment(flow, relevance, {"name": "epipolar", "evidence": "distance"})


def test_a_mover_the_relevance_misses_is_weighed_by_its_distance_over_the_floor():
    # LRP through max-pooling leaves the relevance exactly zero away from its winning units:
    # here on the mover, while the near pole and the background hold all of it.
    flow, mask = translating_camera_scene(bend=4.0)
    relevance = np.full(mask.shape, 0.01)
    relevance[POLE] = 0.2
    relevance[mask] = 0.0
    floored = segment(flow, relevance, {"name": "epipolar"})
    assert jaccard(floored.salient_mask, mask) > 0.9 and not floored.salient_mask[POLE].any()
    # The product alone weighs the mover zero, below the background's mean evidence.
    product = segment(flow, relevance, {"name": "epipolar", "relevance_floor": 0.0})
    assert np.array_equal(product.candidate_regions, floored.candidate_regions)
    assert not product.salient_mask.any()
    with pytest.raises(ValueError, match=r"step2\.relevance_floor must be >= 0"):
        segment(flow, relevance, {"name": "epipolar", "relevance_floor": -0.1})


def test_same_flow_same_regions():
    flow, mask = translating_camera_scene()
    flow += np.random.default_rng(1).normal(0, 0.05, flow.shape).astype(np.float32)
    first = segment(flow, mask.astype(float), {"name": "epipolar", "seed": 3})
    second = segment(flow, mask.astype(float), {"name": "epipolar", "seed": 3})
    assert np.array_equal(first.candidate_regions, second.candidate_regions)


def test_a_homography_explains_a_rotating_or_static_camera():
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x, y = cols - WIDTH / 2, rows - HEIGHT / 2
    angle, zoom = 0.02, 1.01  # rotation about the optical axis and zoom: no parallax
    turn = np.stack(
        [
            zoom * (np.cos(angle) * x - np.sin(angle) * y) - x,
            zoom * (np.sin(angle) * x + np.cos(angle) * y) - y,
        ],
        axis=-1,
    ).astype(np.float32)
    assert parallax_share(turn) == 0.0
    assert not shows_parallax(turn, 1024.0, 0.2, 0.02)
    still = np.zeros((HEIGHT, WIDTH, 2), np.float32)  # a static camera, one object moving
    still[MOVER] = (0.0, 1.5)
    # An undetermined epipolar geometry absorbs a static camera's flow, mover included; the
    # homography leaves only the mover, which the epipolar geometry does not explain by far.
    assert parallax_share(still) == 0.0
    assert not shows_parallax(still, 1024.0, 0.2, 0.02)


def test_parallax_shows_in_a_precise_flow_of_a_scene_in_depth_however_few_its_pixels():
    bent, _ = translating_camera_scene(bend=4.0)
    assert parallax_share(bent) > 0.5
    assert shows_parallax(bent, 1024.0, 0.2, 0.02)
    # A nearly flat wall fills most of the frame and one homography nearly explains it: the
    # pole and the wall's far end show parallax, as a far background with a few near objects.
    flat, _ = translating_camera_scene()
    assert 0.04 < parallax_share(flat) < 0.2
    assert shows_parallax(flat, 1024.0, 0.2, 0.02)
    assert not shows_parallax(flat, 1024.0, 0.2, 0.2)
    # DIS-like error: the epipolar geometry no longer explains the parallax a thousand times
    # better than the homography; affine layers then, as for a static scene.
    noise = np.random.default_rng(0).normal(0.0, 0.1, bent.shape).astype(np.float32)
    assert parallax_share(bent + noise) < 0.02
    assert not shows_parallax(bent + noise, 1024.0, 0.2, 0.02)


def test_the_share_counts_the_pixels_off_the_plane_and_not_one_translation():
    # Known answer: a camera translating past a plane (inverse depth linear in the image) and
    # two poles at 2 and 3 m; every pixel is sampled. The plane's pixels follow one homography,
    # the poles' do not, each by its own parallax.
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x, y = cols - WIDTH / 2, rows - HEIGHT / 2
    depth = 1.0 / (1 / 10.0 + 0.02 * cols / WIDTH)
    poles = np.zeros((HEIGHT, WIDTH), bool)
    poles[:, 40:55] = poles[:, 140:150] = True
    depth[:, 40:55], depth[:, 140:150] = 2.0, 3.0
    point = np.stack([x * depth / FOCAL, y * depth / FOCAL, depth], axis=-1) - [0.3, 0.0, 0.1]
    flow = np.stack(
        [FOCAL * point[..., 0] / point[..., 2] - x, FOCAL * point[..., 1] / point[..., 2] - y],
        axis=-1,
    ).astype(np.float32)
    everything = HEIGHT * WIDTH
    assert parallax_share(flow, samples=everything) == pytest.approx(poles.mean(), abs=0.01)
    assert parallax_share(flow, min_residual=1e3, samples=everything) == 0.0
    # One pole moved sideways before a still camera: the same pixels, one translation.
    still = np.zeros_like(flow)
    still[:, 40:55] = (1.5, 0.0)
    assert parallax_share(still, samples=everything) == 0.0


@pytest.fixture(scope="module")
def default_step2():
    from hydra import compose, initialize_config_dir

    config_dir = str(Path(__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose("evaluate", overrides=["seed=0"]).step2


def test_hierarchical_step_hands_frames_with_parallax_to_the_epipolar_step(default_step2):
    flow, mask = translating_camera_scene(bend=4.0)
    relevance = np.full(mask.shape, 0.01)
    relevance[mask] = 1.0
    result = segment(flow, relevance, default_step2)
    assert result.layers is None and result.step == "epipolar"  # no affine layers peeled
    epipolar = segment(flow, relevance, default_step2.parallax_step)
    assert np.array_equal(result.candidate_regions, epipolar.candidate_regions)
    assert jaccard(result.salient_mask, mask) > 0.9 and not result.salient_mask[POLE].any()
    paper = segment(flow, relevance, {**default_step2, "parallax_ratio": None})
    assert paper.layers is not None and paper.step == "hierarchical"
    noisy = flow + np.random.default_rng(0).normal(0.0, 0.1, flow.shape).astype(np.float32)
    assert segment(noisy, relevance, default_step2).layers is not None


def test_parallax_settings_are_checked_before_any_frame_is_cut(default_step2):
    flow, mask = translating_camera_scene(bend=4.0)
    relevance = mask.astype(float)
    with pytest.raises(ValueError, match=r"step2\.parallax_ratio"):
        segment(flow, relevance, {**default_step2, "parallax_ratio": 0.0})
    with pytest.raises(ValueError, match=r"step2\.parallax_min_share"):
        segment(flow, relevance, {**default_step2, "parallax_min_share": 0.0})
    unnamed = segment(flow, relevance, {"name": "hierarchical", "parallax_ratio": 32.0})
    assert unnamed.step == "epipolar"  # no parallax_step named: step2=epipolar's defaults
    wrong = {**default_step2.parallax_step, "noise_factor": -1.0}
    with pytest.raises(ValueError, match=r"step2\.parallax_step: .*noise_factor"):
        segment(flow, relevance, {**default_step2, "parallax_step": wrong})


def test_an_opencv_failure_on_a_degenerate_sample_means_no_parallax(monkeypatch):
    import cv2

    def fails(*args, **kwargs):  # what OpenCV 5's USAC raises on some degenerate samples
        raise cv2.error("(-215:Assertion failed) !model.empty() in function 'setModelParameters'")

    flow, _ = translating_camera_scene(bend=4.0)
    monkeypatch.setattr(cv2, "findHomography", fails)
    assert parallax_share(flow) == 0.0
    assert not shows_parallax(flow, 1024.0, 0.2, 0.02)


def test_a_rendered_flow_on_which_magsac_failed_gets_a_model():
    # Frame 1 of video 515 of the 1200-video independent set (seed 0, DIS medium): OpenCV's
    # MAGSAC, which fit_fundamental once used, failed an assertion on its 1000
    # sampled correspondences (`!model.empty()`) and the whole sequence was lost.
    from nims.flow_backends import make_flow_estimator
    from nims.synthetic.independent import IndependentConfig
    from nims.synthetic.sets import GENERATORS, video_is_salient
    from nims.synthetic.videos import finish_video

    config = IndependentConfig(frames=8)
    drawn = GENERATORS["independent_synth"][1](
        config, 515, video_is_salient(0, 515, config.salient_fraction)
    )
    estimator = make_flow_estimator({"name": "dis", "preset": "medium"})
    flow = finish_video(drawn, config.min_visible, estimator)["flows"][1].astype(np.float32)
    assert fundamental_matrix(flow, samples=1000).shape == (3, 3)
    assert 0.0 <= parallax_share(flow) <= 1.0
