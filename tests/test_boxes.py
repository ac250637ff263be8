"""The held-out parallax generator (nims.synthetic.boxes): exact flow, known geometry."""

import cv2
import numpy as np

from nims.epipolar import fit_fundamental, point_sampson_distance
from nims.synthetic.boxes import BoxesConfig, boxes_video
from tests.conftest import warp_errors

STILL_CAMERA = dict(forward=(0.0, 0.0), sideways=(0.0, 0.0), bob=0.0)


def _correspondences(flow, keep):
    rows, cols = np.nonzero(keep)
    start = np.column_stack([cols + 0.5, rows + 0.5]).astype(np.float64)
    return start, start + flow[rows, cols].astype(np.float64)


def test_the_drawn_frames_follow_the_exact_flow():
    video = boxes_video(BoxesConfig(size=(90, 160), frames=2), seed=3, salient=True)
    errors = warp_errors(video["frames"][0], video["frames"][1], video["flows"][0])
    assert np.median(errors) < 4


def test_a_still_camera_sees_only_the_walker_move():
    config = BoxesConfig(
        size=(90, 160), frames=2, yaw_rate=0.0, pitch_rate=0.0, roll_rate=0.0, **STILL_CAMERA
    )
    video = boxes_video(config, seed=1, salient=True)
    flow, walker = video["flows"][0], video["masks"][0]
    assert walker.sum() >= 15 and video["others"][0].any()
    assert np.abs(flow[~walker]).max() < 1e-3
    assert np.linalg.norm(flow[walker], axis=1).min() > 0.01
    assert not boxes_video(config, seed=1, salient=False)["masks"][0].any()


def test_a_rotating_camera_gives_one_homography_and_a_translating_one_parallax():
    # A camera that only rotates maps every static point by K R K^-1: one homography leaves no
    # residual; the same scene seen by a translating camera leaves pixels of parallax.
    residuals = {}
    for name, motion in (("rotating", STILL_CAMERA), ("translating", {})):
        config = BoxesConfig(size=(90, 160), frames=2, posts=(4, 4), **motion)
        video = boxes_video(config, seed=2, salient=False)
        start, end = _correspondences(video["flows"][0], np.ones((90, 160), bool))
        homography, _ = cv2.findHomography(start, end, 0)
        projected = np.column_stack([start, np.ones(len(start))]) @ homography.T
        residuals[name] = np.linalg.norm(projected[:, :2] / projected[:, 2:] - end, axis=1)
    assert np.percentile(residuals["rotating"], 99) < 1e-3
    assert np.percentile(residuals["translating"], 90) > 0.5


def test_static_points_keep_to_their_epipolar_lines_and_the_walker_leaves_them():
    video = boxes_video(BoxesConfig(size=(90, 160), frames=2), seed=4, salient=True)
    flow, walker = video["flows"][0], video["masks"][0]
    start, end = _correspondences(flow, ~walker)
    matrix = fit_fundamental(start[::7], end[::7])
    assert np.median(point_sampson_distance(matrix, start, end)) < 1e-3
    walker_start, walker_end = _correspondences(flow, walker)
    assert np.median(point_sampson_distance(matrix, walker_start, walker_end)) > 0.02


def test_the_same_seed_draws_the_same_video():
    config = BoxesConfig(size=(45, 80), frames=2)
    first, second = boxes_video(config, 7, True), boxes_video(config, 7, True)
    for key in ("frames", "flows", "masks", "others"):
        assert all(np.array_equal(a, b) for a, b in zip(first[key], second[key], strict=True))
