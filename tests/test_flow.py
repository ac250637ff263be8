import numpy as np
import pytest

from nims.flow import (
    check_flow,
    flow_to_color,
    load_precomputed_flow,
    read_flow,
    resize_flow,
    write_flow,
)
from nims.flow_backends import FLOW_BACKENDS, make_flow_estimator
from nims.synthetic.pairs import affine_field, random_scene
from tests.conftest import shared_path


def end_point_error(estimate, truth, mask=None):
    error = np.linalg.norm(estimate - truth, axis=2)
    return float(error[mask].mean() if mask is not None else error.mean())


@pytest.mark.parametrize("suffix", [".flo", ".npy"])
def test_write_read_round_trip(tmp_path, suffix):
    flow = np.random.default_rng(0).normal(size=(7, 5, 2)).astype(np.float32) * 10
    path = write_flow(tmp_path / f"sub/f{suffix}", flow)
    np.testing.assert_array_equal(read_flow(path), flow)


def test_flo_file_layout_is_middlebury(tmp_path):
    flow = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    path = write_flow(tmp_path / "f.flo", flow)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH"
    assert np.frombuffer(raw[4:12], dtype=np.int32).tolist() == [4, 3]  # width, height
    np.testing.assert_array_equal(np.frombuffer(raw[12:], dtype=np.float32), flow.ravel())


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.flo"):
        read_flow(tmp_path / "missing.flo")
    bad = tmp_path / "bad.flo"
    bad.write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="bad.flo"):
        read_flow(bad)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((2, 2, 2), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="nan.npy.*NaN"):
        read_flow(nan)


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 3), (0, 4, 2)])
def test_check_flow_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        check_flow(np.zeros(shape))


def test_check_flow_rejects_infinite_values():
    flow = np.zeros((3, 3, 2))
    flow[1, 2, 0] = np.inf
    with pytest.raises(ValueError, match="row 1, column 2"):
        check_flow(flow)


def test_resize_rescales_vectors():
    # An affine field sampled at two resolutions: resizing must give the field of the new grid,
    # with displacements in the new resolution's pixels.
    params = np.array([[3.0, 0.01, 0.0], [-2.0, 0.0, 0.02]])
    height, width = 96, 160
    flow = affine_field(params, (height, width))
    resized = resize_flow(flow, (48, 40))
    sx, sy = 40 / width, 48 / height
    # Pixel centres map as x' = (x + 0.5) * s - 0.5; the field transforms accordingly.
    rows, cols = np.mgrid[0:48, 0:40].astype(np.float64)
    x, y = (cols + 0.5) / sx - 0.5, (rows + 0.5) / sy - 0.5
    expected_u = (params[0, 0] + params[0, 1] * x + params[0, 2] * y) * sx
    expected_v = (params[1, 0] + params[1, 1] * x + params[1, 2] * y) * sy
    inner = (slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(resized[..., 0][inner], expected_u[inner], atol=1e-3)
    np.testing.assert_allclose(resized[..., 1][inner], expected_v[inner], atol=1e-3)
    assert resize_flow(resized, (96, 160)).shape == (96, 160, 2)


def test_resize_constant_flow_scales_each_component():
    flow = np.zeros((100, 200, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 10.0, 4.0
    resized = resize_flow(flow, (25, 100))
    np.testing.assert_allclose(resized[..., 0], 5.0, rtol=1e-6)
    np.testing.assert_allclose(resized[..., 1], 1.0, rtol=1e-6)


def test_colour_wheel_reference_colours():
    flow = np.zeros((1, 5, 2), dtype=np.float32)
    flow[0, 1] = [1, 0]  # right
    flow[0, 2] = [-1, 0]  # left
    flow[0, 3] = [0, 1]  # down
    flow[0, 4] = [0.5, 0]  # half speed right
    colour = flow_to_color(flow)
    assert colour[0, 0].tolist() == [255, 255, 255]  # no motion: white
    # Middlebury wheel (Baker et al.): right is wheel entry 0 (red), left entry 27 (sky blue),
    # down entry 13.5 (orange-yellow).
    assert colour[0, 1].tolist() == [255, 0, 0]
    assert colour[0, 2].tolist() == [0, 209, 255]
    assert colour[0, 3].tolist() == [255, 229, 0]
    # Half the magnitude: halfway between white and the saturated colour.
    np.testing.assert_allclose(
        colour[0, 4].astype(float), 255 - 0.5 * (255 - colour[0, 1].astype(float)), atol=1
    )
    assert flow_to_color(np.zeros((2, 2, 2))).min() == 255


def test_registry_lists_backends_and_rejects_unknown():
    assert {"dis", "farneback", "tvl1", "deepflow", "rlof", "pcaflow", "raft"} <= set(
        FLOW_BACKENDS.names()
    )
    with pytest.raises(KeyError, match="unknown flow backend 'nope'.*dis"):
        make_flow_estimator({"name": "nope"})


@pytest.mark.parametrize(
    "name, max_error",
    [
        ("dis", 0.35),
        ("farneback", 0.6),
        ("tvl1", 0.6),
        ("deepflow", 0.6),
        ("rlof", 0.6),
        ("pcaflow", 0.8),
    ],
)
def test_backend_recovers_known_flow(name, max_error):
    scene = random_scene((120, 200), n_objects=1, seed=3)
    flow = make_flow_estimator({"name": name})(scene.frame0, scene.frame1)
    assert flow.shape == (120, 200, 2) and flow.dtype == np.float32
    interior = np.zeros(scene.layers.shape, dtype=bool)
    interior[10:-10, 10:-10] = True
    assert end_point_error(flow, scene.flow, interior & (scene.layers == 1)) < max_error


def test_full_resolution_dis_tracks_small_objects_better():
    # Crowd walkers are a few pixels wide: the medium preset stops at half resolution.
    from nims.synthetic.crowd import CrowdConfig, crowd_video
    from nims.synthetic.videos import render_video

    cameras, pairs = crowd_video(CrowdConfig(size=(128, 224), frames=2), seed=4, salient=True)
    video = render_video(cameras, pairs, min_visible=15)
    exact = video["flows"].astype(np.float32)
    errors = {}
    for name, options in (
        ("medium", {}),
        ("fine", {"finest_scale": 0, "patch_size": 4, "patch_stride": 1}),
    ):
        estimate = make_flow_estimator({"name": "dis", **options})
        errors[name] = np.mean(
            [
                end_point_error(
                    estimate(video["frames"][t], video["frames"][t + 1]),
                    exact[t],
                    video["others"][t],
                )
                for t in range(2)
            ]
        )
    assert errors["fine"] < 0.8 * errors["medium"]


def test_backend_rejects_mismatched_frames():
    estimate = make_flow_estimator({"name": "dis"})
    with pytest.raises(ValueError, match="same size"):
        estimate(np.zeros((10, 10), np.uint8), np.zeros((10, 12), np.uint8))


def test_raft_without_weights_says_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="flow.weights"):
        make_flow_estimator({"name": "raft", "weights": None})
    missing = tmp_path / "raft_large.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        make_flow_estimator({"name": "raft", "weights": str(missing)})


def test_precomputed_flow_is_read_by_sequence_and_index(tmp_path):
    flow = np.ones((4, 6, 2), dtype=np.float32)
    write_flow(tmp_path / "seq" / "00003.flo", flow)
    np.testing.assert_array_equal(load_precomputed_flow(tmp_path, "seq", 3), flow)
    with pytest.raises(FileNotFoundError, match="00004.flo"):
        load_precomputed_flow(tmp_path, "seq", 4)


def test_dis_is_close_to_raft_on_real_frames():
    raft = read_flow(shared_path("flows", "blackswan-raft", "00000.flo"))
    davis = shared_path("davis2016-mini", "DAVIS", "JPEGImages", "480p", "blackswan")
    import cv2

    frames = [cv2.imread(str(davis / f"{i:05d}.jpg")) for i in (0, 1)]
    flow = make_flow_estimator({"name": "dis", "preset": "medium"})(*frames)
    assert flow.shape == raft.shape == (480, 854, 2)
    # Real footage: the classical flow agrees with RAFT to about a pixel on average.
    assert end_point_error(flow, raft) < 2.0
