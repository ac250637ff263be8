"""dataset=davis_camera: real frames, frame labels only; a frame against itself is a negative."""

import numpy as np
import pytest

from nims import train
from nims.data import davis
from nims.data.camera_pairs import CameraMotion, camera_homography, sequence_pairs
from nims.flow_backends import make_flow_estimator
from tests.conftest import tiny_davis

DIS = {"name": "dis", "preset": "medium", "variational_refinement_iterations": None}


def test_a_still_camera_is_the_identity_and_ranges_bound_the_motion():
    rng = np.random.default_rng(0)
    assert np.allclose(camera_homography(rng, 200, 120, CameraMotion(0, 0, 0, 0)), np.eye(3))
    motion = CameraMotion(zoom=0.0, roll_degrees=0.0, pan_pixels=5.0, perspective=0.0)
    for _ in range(20):
        homography = camera_homography(rng, 200, 120, motion)
        assert np.allclose(homography[:2, :2], np.eye(2))
        assert np.all(np.abs(homography[:2, 2]) <= 5.0)


def test_positives_hold_the_object_and_negatives_only_the_camera(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS", frames=4)
    frames = [davis.read_image(p) for p in davis.image_paths(root, "square")]
    estimate = make_flow_estimator(DIS)
    still = CameraMotion(0, 0, 0, 0)
    positives, negatives = sequence_pairs(frames, estimate, still, 0, "square", (60, 100))
    assert positives.shape == negatives.shape == (3, 2, 60, 100)
    # Without camera motion a frame against itself has no flow; the square moves 3 px a frame,
    # 1.5 px at half resolution.
    assert np.abs(negatives).max() < 0.05
    inside = positives[:, 0, 22:38, 25:40]
    assert np.median(inside) == pytest.approx(1.5, abs=0.3)
    assert np.abs(positives[:, :, :, 80:]).mean() < 0.1
    # A moving camera: the same homography for both, so the negative is the camera alone.
    _, moved = sequence_pairs(frames, estimate, CameraMotion(), 0, "square", (60, 100))
    assert np.abs(moved).mean() > 0.2


def test_train_py_trains_on_real_flows(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS", sequences=("a", "b", "c", "d"), frames=4)
    cfg = compose_config(
        "train",
        [
            "dataset=davis_camera",
            f"dataset.root={root}",
            "dataset.sequences=[a,b,c,d]",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "dataset.workers=1",
            "model.input_size=[32,48]",
            "model.channels=[4,8,8]",
            "trainer.epochs=2",
            "trainer.batch_size=4",
            "progress=false",
            "logger=none",
        ],
    )
    train.run(cfg)
    cached = sorted((tmp_path / "cache" / "davis_camera").glob("*.npz"))
    assert [path.name.split("-")[0] for path in cached] == ["a", "b", "c", "d"]
    stamps = [path.stat().st_mtime_ns for path in cached]
    train.run(compose_config("train", list(cfg_overrides(cfg))))
    assert [path.stat().st_mtime_ns for path in cached] == stamps  # read from the cache
    assert (tmp_path / "run2" / "best.pt").is_file()


def cfg_overrides(cfg):
    return cfg.hydra.overrides.task
