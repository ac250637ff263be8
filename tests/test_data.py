"""Datasets: the synthetic task sets, DAVIS, videos and the flow cache."""

import copy
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from nims.data import davis
from nims.data.flow_cache import sequence_flows
from nims.data.video import read_frames
from nims.flow import resize_flow
from nims.generate import contact_sheet, set_statistics
from nims.synthetic import sets
from nims.synthetic.crowd import CrowdConfig, crowd_video
from nims.synthetic.frames import SyntheticFrames
from nims.synthetic.independent import IndependentConfig, independent_video
from nims.synthetic.render import OTHER_OBJECT, SALIENT, cast, shade, surface_flow
from nims.synthetic.sets import build_set, set_key, split_videos
from nims.synthetic.videos import trace_video
from tests.conftest import shared_path, warp_errors

DIS = OmegaConf.create(
    {"name": "dis", "preset": "medium", "variational_refinement_iterations": None}
)


def small_set(name, cache_dir, **overrides):
    values = dict(
        name=name,
        videos=4,
        frames=4,
        size=[64, 112],
        salient_fraction=0.5,
        flow_source="analytic",
        cache_dir=str(cache_dir),
        seed=0,
    )
    values.update(overrides)
    return OmegaConf.create(values)


@pytest.mark.parametrize(
    "generate, config",
    [
        (crowd_video, CrowdConfig(size=(64, 112), frames=3, people=(20, 40))),
        (independent_video, IndependentConfig(size=(64, 112), frames=3)),
    ],
)
def test_rendered_flow_is_exact(generate, config):
    # Warping frame t+1 back with the analytic flow gives frame t wherever the point stays
    # visible (median over pixels: occlusions and texture resampling are the only errors).
    cameras, pairs = generate(config, seed=3, salient=True)
    current, following = pairs[0]
    hits = cast(cameras[0], current)
    frame0 = shade(hits, current)
    frame1 = shade(cast(cameras[1], following), following)
    flow = surface_flow(hits, cameras[0], cameras[1], following)
    assert np.median(warp_errors(frame0, frame1, flow)) < 6 and np.abs(flow).max() > 0.5


def test_sprite_crowd_flow_is_exact_and_the_odd_walkers_head_elsewhere():
    from nims.synthetic.sprites import SpritesConfig, sprite_crowd_video

    video = sprite_crowd_video(SpritesConfig(size=(64, 112), frames=2), seed=5, salient=True)
    flow = video["flows"][0]
    assert np.median(warp_errors(video["frames"][0], video["frames"][1], flow)) < 6
    # Relative to the background, the distinctive walkers move against the crowd's direction.
    background = ~(video["masks"][0] | video["others"][0])
    camera = np.median(flow[background], axis=0)
    odd = flow[video["masks"][0]].mean(axis=0) - camera
    crowd = flow[video["others"][0]].mean(axis=0) - camera
    assert video["masks"][0].sum() >= 15 and video["others"][0].any()
    assert odd @ crowd / (np.linalg.norm(odd) * np.linalg.norm(crowd)) < np.cos(1.0)
    quiet = sprite_crowd_video(SpritesConfig(size=(64, 112), frames=2), seed=5, salient=False)
    assert not quiet["masks"].any()


def test_independent_scenes_have_strong_parallax_without_movers():
    config = IndependentConfig(size=(96, 160), frames=2)
    for seed in range(4):
        cameras, pairs = independent_video(config, seed=seed, salient=False)
        current, following = pairs[0]
        hits = cast(cameras[0], current)
        flow = surface_flow(hits, cameras[0], cameras[1], following)
        kinds = np.array([s.kind for s in current])[np.maximum(hits.index, 0)]
        assert not (kinds == SALIENT).any()
        # Parallax: near objects move relative to the far wall by pixels, not fractions.
        far = np.median(flow[(kinds == 0) & (hits.index == 1)], axis=0)
        relative = np.linalg.norm(flow[kinds == OTHER_OBJECT] - far, axis=1)
        assert relative.size and np.median(relative) > 1.5


def test_crowd_walkers_have_a_gait():
    config = CrowdConfig(size=(96, 160), frames=2, people=(30, 30))
    cameras, pairs = crowd_video(config, seed=1, salient=False)
    current, following = pairs[0]
    # Surfaces 1, 2, 3 are the first walker's body and legs: the legs move relative to it.
    body, left_leg = 1, 2
    move = [following[k].origin - current[k].origin for k in (body, left_leg)]
    assert np.linalg.norm(move[1] - move[0]) > 0.01


def test_crowd_frame_rate_divides_the_motion_and_keeps_the_scene():
    # Same seed, 5 and 20 frames a second, a still camera: the first placements are the same
    # scene, and each walker moves a quarter as far per frame (speed in metres per second).
    still = dict(size=(64, 112), frames=1, people=(20, 20), pan=0.0, tilt=0.0, zoom=0.0, travel=0.0)
    moves = []
    for rate in (5.0, 20.0):
        cameras, pairs = crowd_video(CrowdConfig(frame_rate=(rate, rate), **still), 4, True)
        current, following = pairs[0]
        moves.append(
            np.array(
                [b.origin - a.origin for a, b in zip(current[1::3], following[1::3], strict=True)]
            )
        )
        assert np.allclose(cameras[0].rotation, cameras[1].rotation)
    first, _ = crowd_video(CrowdConfig(frame_rate=(5.0, 5.0), **still), 4, True)[1][0]
    again, _ = crowd_video(CrowdConfig(frame_rate=(20.0, 20.0), **still), 4, True)[1][0]
    assert all(np.array_equal(a.origin, b.origin) for a, b in zip(first, again, strict=True))
    speeds = np.linalg.norm(moves[0], axis=1)
    assert np.allclose(np.linalg.norm(moves[1], axis=1), speeds / 4)
    assert 0.2 < np.median(speeds) < 0.4  # 1.5 m/s at 5 frames/s


def test_crowd_walker_texels_change_the_clothes_not_the_motion():
    # Finer clothes (texels per metre) redraw the walkers' pixels only: the same scene, exact
    # flows and masks, the ground untouched, more contrast between neighbouring walker pixels.
    videos = [
        trace_video(
            *crowd_video(
                CrowdConfig(size=(96, 160), frames=1, people=(40, 40), walker_texels=texels),
                seed=5,
                salient=True,
            )
        )
        for texels in ((30.0, 30.0), (120.0, 120.0))
    ]
    for name in ("flows", "masks", "others"):
        assert np.array_equal(videos[0][name][0], videos[1][name][0])
    walkers = videos[0]["masks"][0] | videos[0]["others"][0]
    frames = [video["frames"][0].astype(float) for video in videos]
    assert np.array_equal(frames[0][~walkers], frames[1][~walkers])
    assert not np.array_equal(frames[0][walkers], frames[1][walkers])
    inside = walkers[:, 1:] & walkers[:, :-1]
    steps = [np.abs(np.diff(frame, axis=1))[inside].mean() for frame in frames]
    assert steps[1] > 1.2 * steps[0]


def test_a_generator_field_added_at_its_default_keeps_the_cached_sets_key(tmp_path):
    # walker_texels at its default draws the sets cached before it existed: their key is kept
    # (this literal is the key of that set before the field was added).
    keys = [
        set_key(small_set("crowd_synth", tmp_path, **texels), DIS)
        for texels in ({}, {"walker_texels": [30, 30]}, {"walker_texels": [30, 120]})
    ]
    assert keys[:2] == ["e96ac9ad4613", "e96ac9ad4613"]
    assert keys[2] != keys[0]


@pytest.mark.parametrize("name", ["crowd_synth", "independent_synth"])
def test_synthetic_set_is_deterministic_and_cached(tmp_path, name):
    folder = build_set(small_set(name, tmp_path / "a"), DIS, progress=False)
    again = build_set(small_set(name, tmp_path / "b"), DIS, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == json.loads((again / "manifest.json").read_text())
    for array in ("flows", "masks", "labels", "frames"):
        assert np.array_equal(
            np.load(folder / "video_0001" / f"{array}.npy"),
            np.load(again / "video_0001" / f"{array}.npy"),
        )
    stamp = os.path.getmtime(folder / "manifest.json")
    assert build_set(small_set(name, tmp_path / "a"), DIS, progress=False) == folder
    assert os.path.getmtime(folder / "manifest.json") == stamp  # reused, not regenerated
    labels = np.load(folder / "video_0000" / "labels.npy")
    masks = np.load(folder / "video_0000" / "masks.npy")
    assert np.array_equal(labels, (masks.sum(axis=(1, 2)) >= 15).astype(np.uint8))


def test_workers_render_the_same_set(tmp_path):
    serial = build_set(
        small_set("crowd_synth", tmp_path / "a", flow_source="estimated"), DIS, progress=False
    )
    parallel = build_set(
        small_set("crowd_synth", tmp_path / "b", flow_source="estimated", workers=2),
        DIS,
        progress=False,
    )
    assert json.loads((serial / "manifest.json").read_text()) == json.loads(
        (parallel / "manifest.json").read_text()
    )
    for video in ("video_0000", "video_0002"):
        for array in ("flows", "masks", "frames"):
            assert np.array_equal(
                np.load(serial / video / f"{array}.npy"), np.load(parallel / video / f"{array}.npy")
            )
    with pytest.raises(ValueError, match="dataset.workers"):
        build_set(small_set("crowd_synth", tmp_path / "c", workers=-1), DIS, progress=False)


def _build_and_read(config_yaml, results):
    # What a training does: find or build the set, then read every video of it.
    folder = build_set(OmegaConf.create(config_yaml), DIS, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    for video in range(manifest["videos"]):
        for array in ("flows", "masks", "frames", "labels"):
            np.load(folder / f"video_{video:04d}" / f"{array}.npy")
    results.put(str(folder))


def test_processes_building_one_set_at_once_share_it(tmp_path):
    # Trainings started together on an uncached set (a sweep, a GPU search) used to render it
    # into one folder: a later one deleted the first one's videos, which then read missing or
    # half-written files (EOFError on the GPU machine, 2026-11-26).
    config = OmegaConf.to_yaml(small_set("crowd_synth", tmp_path, videos=16))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_build_and_read, args=(config, results)) for _ in range(3)]
    workers[0].start()
    deadline = time.monotonic() + 120
    while not list(tmp_path.rglob("video_0001")) and time.monotonic() < deadline:
        time.sleep(0.02)
    for worker in workers[1:]:  # while the first one renders
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    folders = {results.get(timeout=5) for _ in workers}
    assert len(folders) == 1
    folder = Path(folders.pop())
    reference = build_set(small_set("crowd_synth", tmp_path / "alone", videos=16), DIS, False)
    assert json.loads((folder / "manifest.json").read_text()) == json.loads(
        (reference / "manifest.json").read_text()
    )
    for video in range(16):
        for array in ("flows", "masks", "frames"):
            name = f"video_{video:04d}/{array}.npy"
            assert np.array_equal(np.load(folder / name), np.load(reference / name))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "alone",
        folder.name,
    ]


def test_an_interrupted_render_is_never_taken_for_a_set(tmp_path, monkeypatch):
    config = small_set("independent_synth", tmp_path, videos=5)
    real = sets._generate_video

    def fails_on_video_3(folder, name, generator_cfg, flow, flow_source, seed, video):
        if video == 3:
            raise KeyboardInterrupt
        return real(folder, name, generator_cfg, flow, flow_source, seed, video)

    monkeypatch.setattr(sets, "_generate_video", fails_on_video_3)
    with pytest.raises(KeyboardInterrupt):
        build_set(config, DIS, progress=False)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # no set, no leftovers
    monkeypatch.setattr(sets, "_generate_video", real)
    folder = build_set(config, DIS, progress=False)
    assert json.loads((folder / "manifest.json").read_text())["videos"] == 5
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [folder.name]


def test_other_flow_or_parameters_never_reuse_a_set(tmp_path):
    analytic = build_set(small_set("independent_synth", tmp_path), DIS, progress=False)
    estimated = build_set(
        small_set("independent_synth", tmp_path, flow_source="estimated"), DIS, progress=False
    )
    other_backend = build_set(
        small_set("independent_synth", tmp_path, flow_source="estimated"),
        OmegaConf.create({"name": "farneback"}),
        progress=False,
    )
    assert len({analytic, estimated, other_backend}) == 3
    exact = np.load(analytic / "video_0000" / "flows.npy").astype(np.float32)
    measured = np.load(estimated / "video_0000" / "flows.npy").astype(np.float32)
    assert not np.array_equal(exact, measured)
    assert np.median(np.linalg.norm(exact - measured, axis=-1)) < 1.0  # DIS is close
    manifest = json.loads((analytic / "manifest.json").read_text())
    manifest["key"] = "tampered"
    (analytic / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="another configuration"):
        build_set(small_set("independent_synth", tmp_path), DIS, progress=False)


def test_splits_are_by_video_and_stream_frames(tmp_path):
    folder = build_set(small_set("independent_synth", tmp_path, videos=7), DIS, progress=False)
    splits = {split: SyntheticFrames(folder, split, (32, 48)) for split in ("train", "val", "test")}
    videos = [set(data.videos) for data in splits.values()]
    assert all(videos) and not (
        videos[0] & videos[1] or videos[0] & videos[2] or videos[1] & videos[2]
    )
    flow, label = splits["train"][0]
    assert flow.shape == (2, 32, 48) and label.item() in (0.0, 1.0)
    statistics = set_statistics(folder)
    assert statistics["frames"] == 28 and 0 <= statistics["salient_frame_fraction"] <= 1
    assert contact_sheet(folder).ndim == 3
    with pytest.raises(ValueError, match="at least 3"):
        split_videos(2, 0)


def test_training_reads_one_store_of_flows_at_the_input_size(tmp_path):
    folder = build_set(small_set("independent_synth", tmp_path, videos=4), DIS, progress=False)
    data = SyntheticFrames(folder, "train", (32, 48))
    # The literal reference: each frame's full-resolution flow resized on its own.
    for index, (video, frame) in enumerate(data.items):
        stored = np.load(folder / f"video_{video:04d}" / "flows.npy")[frame].astype(np.float32)
        expected = resize_flow(stored, (32, 48)).transpose(2, 0, 1)
        assert np.array_equal(data[index][0].numpy(), expected)
    store = folder / "training" / "train-32x48.npy"
    stamp = store.stat().st_mtime_ns
    again = SyntheticFrames(folder, "train", (32, 48))
    assert np.array_equal(again[1][0].numpy(), data[1][0].numpy())
    assert store.stat().st_mtime_ns == stamp  # written once
    assert SyntheticFrames(folder, "val", (16, 24))[0][0].shape == (2, 16, 24)


def test_davis_sequences_in_the_official_layout(davis_root):
    assert davis.split_sequences(davis_root, "val")[:2] == ["blackswan", "bmx-trees"]
    frames, annotations = davis.check_sequence(davis_root, "car-shadow")
    assert len(frames) == len(annotations) == 40
    assert davis.read_image(frames[0]).shape == (480, 854, 3)
    assert davis.read_mask(annotations[10]).any()


def test_davis_frame_count_mismatch_and_bad_images(davis_root, tmp_path):
    root = tmp_path / "DAVIS"
    for kind in ("JPEGImages", "Annotations"):
        shutil.copytree(davis_root / kind / "480p" / "libby", root / kind / "480p" / "libby")
    (root / "Annotations" / "480p" / "libby" / "00048.png").unlink()
    with pytest.raises(ValueError, match="49 frames.*48 annotations"):
        davis.check_sequence(root, "libby")
    broken = root / "JPEGImages" / "480p" / "libby" / "00003.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(ValueError, match="00003.jpg"):
        davis.read_image(broken)
    with pytest.raises(FileNotFoundError, match="parkour"):
        davis.check_sequence(root, "parkour")
    with pytest.raises(FileNotFoundError, match="dataset.root"):
        davis.resolve_root(str(tmp_path / "nowhere"))
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("libby\n")
    assert davis.split_sequences(root, "val") == ["libby"]


def test_flow_cache_computes_once_and_separates_backends(davis_root, tmp_path):
    frames, _ = davis.check_sequence(davis_root, "blackswan")
    sequence = davis.FrameSequence(frames[:3])
    flows = sequence_flows(sequence, DIS, tmp_path, "davis2016", "blackswan")
    assert len(flows) == 2 and flows[0].shape == (480, 854, 2)
    cached = sorted((tmp_path / "flows" / "davis2016").glob("dis-*/blackswan-*/*.flo"))
    assert len(cached) == 2
    stamps = [os.path.getmtime(p) for p in cached]
    again = sequence_flows(sequence, DIS, tmp_path, "davis2016", "blackswan")
    assert [os.path.getmtime(p) for p in cached] == stamps
    np.testing.assert_array_equal(again[1], flows[1])
    fast = copy.deepcopy(DIS)
    fast.preset = "fast"
    sequence_flows(sequence, fast, tmp_path, "davis2016", "blackswan")
    assert len(list((tmp_path / "flows" / "davis2016").glob("dis-*"))) == 2
    # The same frames copied elsewhere (new paths and times) read the same cache; a frame
    # whose bytes changed gets its own folder.
    copies = []
    for index, path in enumerate(frames[:3]):
        copies.append(tmp_path / "copy" / path.name)
        copies[-1].parent.mkdir(exist_ok=True)
        shutil.copy(path, copies[-1])
        os.utime(copies[-1], (index, index))
    sequence_flows(davis.FrameSequence(copies), DIS, tmp_path, "davis2016", "blackswan")
    assert len(list(cached[0].parent.parent.glob("blackswan-*"))) == 1
    assert [os.path.getmtime(p) for p in cached] == stamps
    copies[2].write_bytes(frames[1].read_bytes())
    sequence_flows(davis.FrameSequence(copies), DIS, tmp_path, "davis2016", "blackswan")
    assert len(list(cached[0].parent.parent.glob("blackswan-*"))) == 2
    meta = cached[0].parent / "meta.json"
    meta.write_text(meta.read_text().replace("[480, 854]", "[240, 427]"))
    with pytest.raises(ValueError, match="flow cache"):
        sequence_flows(sequence, DIS, tmp_path, "davis2016", "blackswan")


def test_quantized_flow_cache_is_within_a_thousandth_of_a_pixel_at_half_the_size(
    davis_root, tmp_path
):
    frames, _ = davis.check_sequence(davis_root, "blackswan")
    sequence = davis.FrameSequence(frames[:3])
    exact = sequence_flows(sequence, DIS, tmp_path / "flo", "davis2016", "blackswan")
    stored = sequence_flows(
        sequence, DIS, tmp_path / "q", "davis2016", "blackswan", store="quantized"
    )
    again = sequence_flows(
        sequence, DIS, tmp_path / "q", "davis2016", "blackswan", store="quantized"
    )
    for flow, first, second in zip(exact, stored, again, strict=True):
        assert np.abs(first - flow).max() <= 1 / 2048  # rounded to 1/1024 px
        np.testing.assert_array_equal(first, second)  # what was computed is what is read
    sizes = {
        store: sum(p.stat().st_size for p in (tmp_path / store).rglob(f"0000*.{suffix}"))
        for store, suffix in (("flo", "flo"), ("q", "npz"))
    }
    assert sizes["q"] < 0.75 * sizes["flo"]
    with pytest.raises(ValueError, match="paths.flow_format"):
        sequence_flows(sequence, DIS, tmp_path, "davis2016", "blackswan", store="half")
    broken = next((tmp_path / "q").rglob("00000.npz"))
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="00000.npz is unreadable"):
        sequence_flows(sequence, DIS, tmp_path / "q", "davis2016", "blackswan", store="quantized")


def test_precomputed_flows_are_read_from_the_users_folder():
    root = shared_path("flows")
    flows = sequence_flows(
        [None] * 4, {"name": "precomputed", "root": str(root)}, None, "davis2016", "blackswan-raft"
    )
    assert len(flows) == 3 and flows[0].shape == (480, 854, 2)


def test_video_file_and_frame_folder(tmp_path):
    video = shared_path("videos", "vtest.avi")
    frames = list(read_frames(video, max_frames=5, step=2))
    assert len(frames) == 5 and frames[0].shape == (360, 480, 3)
    for index, frame in enumerate(frames[:3]):
        cv2.imwrite(str(tmp_path / f"{index:03d}.png"), frame)
    assert len(list(read_frames(tmp_path))) == 3


def test_bad_video_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        list(read_frames(tmp_path / "missing.mp4"))
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="bogus.mp4"):
        list(read_frames(bogus))
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="b.png"):
        list(read_frames(folder))
    (folder / "c.png").write_bytes(b"broken")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no image"):
        list(read_frames(empty))


def test_a_range_written_with_integers_is_the_same_set(tmp_path):
    # `dataset.frame_rate=[8,25]` on the command line and `[8.0, 25.0]` in the YAML are one set.
    from nims.synthetic.sets import generator_config, set_key

    written = [
        small_set("crowd_synth", tmp_path, frame_rate=rate) for rate in ([8, 25], [8.0, 25.0])
    ]
    assert generator_config(written[0]).frame_rate == (8.0, 25.0)
    assert set_key(written[0], DIS) == set_key(written[1], DIS)
    assert set_key(written[0], DIS) != set_key(
        small_set("crowd_synth", tmp_path, frame_rate=[5, 5]), DIS
    )


def test_a_mixed_set_stores_exact_flow_for_some_videos_and_estimated_for_the_others(tmp_path):
    from nims.synthetic.sets import video_flow_is_estimated

    mixed = build_set(
        small_set("crowd_sprites", tmp_path / "m", videos=8, frames=2, flow_source="mixed"),
        DIS,
        progress=False,
    )
    exact = build_set(
        small_set("crowd_sprites", tmp_path / "e", videos=8, frames=2), DIS, progress=False
    )
    estimated = [video_flow_is_estimated(0, video, "mixed") for video in range(8)]
    assert any(estimated) and not all(estimated)
    for video, by_estimate in enumerate(estimated):
        stored = np.load(mixed / f"video_{video:04d}" / "flows.npy")
        truth = np.load(exact / f"video_{video:04d}" / "flows.npy")
        assert np.array_equal(stored, truth) != by_estimate
    with pytest.raises(ValueError, match="'estimated', 'analytic' or 'mixed'"):
        build_set(small_set("crowd_sprites", tmp_path / "x", flow_source="dis"), DIS)
