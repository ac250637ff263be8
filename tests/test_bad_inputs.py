"""The catalogue of bad inputs that once gave a wrong result with exit code 0, on tiny data made
here: each must now give a clear error naming the file or key, or the right result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from nims import evaluate
from nims.ablation import region_from_config
from nims.data import davis
from nims.data.flow_cache import sequence_flows
from nims.data.video import frame_files, read_frames
from nims.flow import read_flow, write_flow
from nims.model import load_checkpoint
from nims.report import write_json
from nims.sweep import collect_sweep
from tests.conftest import REPO, tiny_davis

DIS = {"name": "dis", "preset": "medium", "variational_refinement_iterations": None}


def run_evaluate(compose_config, root, *extra, output_dir=None):
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={root}",
            "logger=none",
            "progress=false",
            f"dataset.cache_dir={root.parent / 'cache'}",
            *extra,
        ],
        output_dir=output_dir,
    )
    return evaluate.run(cfg)


class _RunsCodeWhenUnpickled:
    """What a crafted checkpoint holds: unpickling it would call ``marker.touch()``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_1_a_checkpoint_that_would_run_code_is_refused_unread(tmp_path):
    marker = tmp_path / "code_ran"
    crafted = tmp_path / "crafted.pt"
    torch.save({"model_state": {}, "payload": _RunsCodeWhenUnpickled(marker)}, crafted)
    with pytest.raises(ValueError, match="crafted.pt.*never unpickled"):
        load_checkpoint(crafted)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../outside", "square/..", "nosuch"])
def test_2_sequence_names_cannot_leave_the_dataset(tmp_path, compose_config, name):
    root = tiny_davis(tmp_path / "DAVIS")
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(FileNotFoundError, match="not a sequence folder.*available: square"):
        run_evaluate(compose_config, root, f"dataset.sequences=[{name}]")
    assert list(outside.iterdir()) == []


def test_3_a_truncated_frame_is_refused_by_name(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    frame = root / "JPEGImages" / "480p" / "square" / "00002.jpg"
    frame.write_bytes(frame.read_bytes()[:600])
    with pytest.raises(ValueError, match=r"00002\.jpg.*truncated"):
        davis.read_image(frame)
    with pytest.raises(RuntimeError, match="every sequence failed.*00002.jpg"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]")


def test_4_a_gap_in_frame_numbers_is_refused(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS", frames=6)
    (root / "JPEGImages" / "480p" / "square" / "00002.jpg").unlink()
    (root / "Annotations" / "480p" / "square" / "00005.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"frames are not consecutive.*missing \[2\]"):
        davis.check_sequence(root, "square")


def test_5_numbering_is_stated_never_guessed(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS", frames=6)
    results = tmp_path / "results" / "square"
    results.mkdir(parents=True)
    annotations = davis.annotation_paths(root, "square")
    # Numbered from 00001, the (unscored) last frame left out: 00001..00005 for 6 frames.
    for index, path in enumerate(annotations[:-1]):
        (results / f"{index + 1:05d}.png").write_bytes(path.read_bytes())
    score = ["dataset.sequences=[square]", f"predictions={results.parent}"]
    assert run_evaluate(compose_config, root, *score, "predictions_first_index=1") == 1.0
    # Read in the official numbering these files are one frame late: J < 1, never a guess.
    assert run_evaluate(compose_config, root, *score) < 0.9
    # Without 00001, the official numbering misses frame 1, and says the other one fits.
    (results / "00001.png").unlink()
    with pytest.raises(RuntimeError, match=r"frame 1 missing.*predictions_first_index=1"):
        run_evaluate(compose_config, root, *score, "predictions_first_index=0")
    assert run_evaluate(compose_config, root, *score, "predictions_first_index=1") == 1.0


def test_6_the_flow_cache_knows_the_frames(tmp_path):
    first = tiny_davis(tmp_path / "first")
    second = tiny_davis(tmp_path / "second")
    frame = second / "JPEGImages" / "480p" / "square" / "00001.jpg"
    image = davis.read_image(frame)
    cv2.imwrite(str(frame), np.roll(image, 5, axis=1))
    cache = tmp_path / "cache"

    def flows(root):
        paths = davis.image_paths(root, "square")
        return sequence_flows(davis.FrameSequence(paths), DIS, cache, "davis2016", "square")

    one, two = flows(first), flows(second)
    assert not np.allclose(one[0], two[0])  # another root: its own flows, not the cached ones
    assert len(list((cache / "flows" / "davis2016").glob("dis-*/square-*"))) == 2
    in_memory = [davis.read_image(p) for p in davis.image_paths(first, "square")]
    clip = sequence_flows(in_memory, DIS, cache, "video", "clip")
    other = sequence_flows(in_memory[::-1], DIS, cache, "video", "clip")
    assert not np.allclose(clip[0], other[0])  # two clips of the same name


def test_7_resume_with_another_config_is_refused(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    run_folder = tmp_path / "run"
    run_evaluate(compose_config, root, "dataset.sequences=[square]", output_dir=run_folder)
    # Same computation, other execution settings: resumed.
    run_evaluate(
        compose_config,
        root,
        "dataset.sequences=[square]",
        "resume=true",
        "batch_size=2",
        output_dir=run_folder,
    )
    with pytest.raises(ValueError, match=r"another config \(step2.beta: 1.2 -> 1.6"):
        run_evaluate(
            compose_config,
            root,
            "dataset.sequences=[square]",
            "resume=true",
            "step2.beta=1.6",
            output_dir=run_folder,
        )


def test_8_a_sweep_job_that_lost_a_sequence_is_incomplete(tmp_path):
    for job, failures in (("0", {}), ("1", {"libby": "ValueError: ..."})):
        write_json(tmp_path / job / "summary.json", {"J&F": 0.5})
        write_json(tmp_path / job / "failures.json", failures)
    rows = collect_sweep(tmp_path)
    assert [row["status"] for row in rows] == ["done", "incomplete: failed libby"]


@pytest.mark.parametrize(
    "override, key",
    [("saliency.mask_threshold=1.5", "mask_threshold"), ("step2.max_layers=0", "max_layers")],
)
def test_9_impossible_settings_are_refused(tmp_path, compose_config, override, key):
    root = tiny_davis(tmp_path / "DAVIS")
    with pytest.raises(RuntimeError, match=key):
        run_evaluate(compose_config, root, "dataset.sequences=[square]", override)


def test_a_flo_header_that_lies_is_refused(tmp_path):
    path = write_flow(tmp_path / "flow.flo", np.zeros((4, 5, 2), np.float32))
    data = bytearray(path.read_bytes())
    data[4:12] = np.array([100000, 100000], "<i4").tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flow.flo.*100000x100000"):
        read_flow(path)
    path.write_bytes(bytes(data[:20]))
    with pytest.raises(ValueError, match="flow.flo"):
        read_flow(path)


def test_json_has_no_nan(tmp_path):
    path = write_json(tmp_path / "summary.json", {"AP": float("nan"), "rows": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"AP": None, "rows": [None, 1.0]}
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file is gone


def test_a_misspelt_step2_key_is_named(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    with pytest.raises(ValueError, match=r"no setting step2\.betta.*beta"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]", "+step2.betta=1")


def test_the_demo_refuses_a_dataset_root_that_is_not_one(tmp_path, compose_config):
    from nims import demo

    cfg = compose_config("demo", [f"dataset.root={tmp_path / 'typo'}"])
    with pytest.raises(FileNotFoundError, match="typo holds no JPEGImages"):
        demo.run(cfg)


@pytest.mark.parametrize(
    "entry, key",
    [
        ("evaluate", "batch_size"),
        ("evaluate", "sequence_workers"),
        ("evaluate", "threads"),
        ("train", "trainer.batch_size"),
        ("train", "trainer.threads"),
    ],
)
def test_counts_below_one_are_named(tmp_path, compose_config, entry, key):
    from nims import train

    run = evaluate.run if entry == "evaluate" else train.run
    with pytest.raises(ValueError, match=rf"{key} must be an integer >= 1, got 0"):
        run(compose_config(entry, [f"{key}=0", "logger=none"]))


def test_a_two_frame_sequence_fails_alone_by_name(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS", sequences=("square",))
    tiny_davis(tmp_path / "other", sequences=("short",), frames=2)
    for kind in ("JPEGImages", "Annotations"):
        (tmp_path / "other" / kind / "480p" / "short").rename(root / kind / "480p" / "short")
    run_folder = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"1 sequence\(s\) failed \(short: ValueError"):
        run_evaluate(
            compose_config, root, "dataset.sequences=[square,short]", output_dir=run_folder
        )
    failures = json.loads((run_folder / "failures.json").read_text())
    assert list(failures) == ["short"] and "at least 3" in failures["short"]
    assert "square" in (run_folder / "per_sequence.csv").read_text()


def test_a_frame_of_another_size_is_named(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    frame = root / "JPEGImages" / "480p" / "square" / "00003.jpg"
    cv2.imwrite(str(frame), cv2.resize(davis.read_image(frame), (100, 60)))
    with pytest.raises(RuntimeError, match=r"00003\.jpg is 100x60, its first frame 200x120"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]")


def test_an_annotation_of_another_size_is_blamed_on_itself(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    annotation = root / "Annotations" / "480p" / "square" / "00001.png"
    cv2.imwrite(str(annotation), np.zeros((60, 100), np.uint8))
    with pytest.raises(
        RuntimeError,
        match=r"00001\.png has size 100x60, expected 200x120 "
        r"\(the frames'\)",
    ):
        run_evaluate(compose_config, root, "dataset.sequences=[square]")


def test_a_precomputed_flow_of_another_size_is_named(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    flows = tmp_path / "flows" / "square"
    for index in range(4):
        write_flow(flows / f"{index:05d}.flo", np.zeros((60, 100, 2), np.float32))
    with pytest.raises(RuntimeError, match=r"square/00000\.flo is 100x60, the frames are 200x120"):
        run_evaluate(
            compose_config,
            root,
            "dataset.sequences=[square]",
            "flow=precomputed",
            f"flow.root={flows.parent}",
        )


def test_checkpoints_that_do_not_fit_are_named(tmp_path):
    from nims.model import MotionClassifier, load_classifier, save_checkpoint

    model = MotionClassifier((32, 48), (4, 8, 8), (5, 3, 3), "batch", "max")
    path = tmp_path / "edited.pt"
    save_checkpoint(path, model, "independent", {})
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["architecture"]["channels"] = [4, 8, 16]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="edited.pt: the weights do not match"):
        load_classifier(path)
    del checkpoint["task"]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="edited.pt records no task"):
        load_classifier(path, expected_task="independent")


def test_a_damaged_score_file_is_computed_again_on_resume(tmp_path, compose_config, caplog):
    root = tiny_davis(tmp_path / "DAVIS")
    run_folder = tmp_path / "run"
    run_evaluate(compose_config, root, "dataset.sequences=[square]", output_dir=run_folder)
    score = run_folder / "scores" / "square.json"
    written = json.loads(score.read_text())
    score.write_text('{"J": [0.')
    run_evaluate(
        compose_config, root, "dataset.sequences=[square]", "resume=true", output_dir=run_folder
    )
    assert "square.json is unreadable" in caplog.text
    assert json.loads(score.read_text()) == written


def test_a_run_folder_that_cannot_be_made_is_named(tmp_path, compose_config):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    root = tiny_davis(tmp_path / "DAVIS")
    with pytest.raises(OSError, match="cannot create the run folder.*hydra.run.dir"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]", output_dir=blocker / "run")


def test_a_video_cut_short_is_reported(tmp_path, caplog):
    from nims.data.video import read_frames

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    frames = list(read_frames(path))
    assert 0 < len(frames) < 20
    assert "announces 20 frames" in caplog.text and "clip.avi" in caplog.text


def _loky_workers(pid):
    """Pids of the loky worker processes below ``pid`` (Linux /proc)."""
    from pathlib import Path

    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            for child in children.read_text().split():
                stack.append(int(child))
                cmdline = Path(f"/proc/{child}/cmdline")
                if cmdline.exists() and b"loky" in cmdline.read_bytes():
                    found.append(int(child))
    return found


def _running(pid):
    from pathlib import Path

    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_sigterm_stops_the_workers_too(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux /proc to list the worker processes")
    names = ("a", "b", "c", "d")
    root = tiny_davis(tmp_path / "DAVIS", sequences=names, frames=60)
    run_folder = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "evaluate.py",
            f"dataset.root={root}",
            f"dataset.sequences=[{','.join(names)}]",
            "sequence_workers=2",
            "logger=none",
            "progress=false",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={run_folder}",
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        workers = []
        while time.time() < deadline and not (
            workers and list(run_folder.glob("Segmentations/480p/nims/*/*.png"))
        ):
            workers = _loky_workers(process.pid) or workers
            time.sleep(0.1)
        assert workers, "the run never started its workers"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) != 0
        time.sleep(1.0)
        assert not [pid for pid in workers if _running(pid)]
    finally:
        process.kill()


def test_a_truncated_cached_flow_is_named_with_what_to_do(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS")
    sequence = davis.FrameSequence(davis.image_paths(root, "square"))
    sequence_flows(sequence, DIS, tmp_path / "cache", "davis2016", "square")
    cached = sorted((tmp_path / "cache").rglob("00001.flo"))[0]
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cached flow .*00001\.flo is unreadable.*delete it"):
        sequence_flows(sequence, DIS, tmp_path / "cache", "davis2016", "square")


def test_a_full_disk_leaves_no_empty_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from nims.benchmarks import write_mask as _write_mask

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="No space left"):
        _write_mask(tmp_path / "masks" / "00000.png", np.ones((4, 4), bool))
    assert list((tmp_path / "masks").iterdir()) == []


def test_devices_are_resolved_or_refused_by_key(tmp_path, compose_config):
    from nims.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("gpu", "device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device=cuda but PyTorch sees no CUDA device"):
            run_evaluate(compose_config, tiny_davis(tmp_path / "DAVIS"), "device=cuda")


def test_fine_tuning_a_unet_is_refused_by_key(tmp_path, compose_config):
    from nims import train

    cfg = compose_config(
        "train",
        [
            "task=crowd",
            "model=unet",
            "model.input_size=[32,48]",
            "model.channels=[4,8]",
            "dataset.videos=3",
            "dataset.frames=2",
            "dataset.size=[64,112]",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "trainer.trainable=fc",
            "progress=false",
            "logger=none",
        ],
    )
    with pytest.raises(ValueError, match="trainer.trainable=fc.*UNet has none"):
        train.run(cfg)


def test_saved_masks_are_scored_on_davis_only(tmp_path, compose_config):
    cache = tmp_path / "cache"
    cfg = compose_config(
        "evaluate",
        [
            "dataset=parallax_synth",
            f"dataset.cache_dir={cache}",
            f"predictions={tmp_path}",
            "logger=none",
        ],
    )
    with pytest.raises(ValueError, match="predictions=<dir> scores DAVIS-2016 results"):
        evaluate.run(cfg)
    assert not cache.exists()  # refused before the set is rendered


def test_a_training_set_is_not_evaluated(compose_config):
    cfg = compose_config("evaluate", ["dataset=synthetic_scenes", "logger=none"])
    with pytest.raises(ValueError, match="dataset=synthetic_scenes cannot be evaluated.*davis2016"):
        evaluate.run(cfg)


# Second round: files paired by number, masks read as drawn, frames decoded in full everywhere.


def _with_alpha(mask: np.ndarray, grey: bool) -> Image.Image:
    """A mask as grey+alpha or RGBA, fully opaque."""
    alpha = np.full(mask.shape, 255, np.uint8)
    if grey:
        return Image.fromarray(np.stack([mask, alpha], axis=2), "LA")
    return Image.fromarray(np.stack([mask, mask, mask, alpha], axis=2), "RGBA")


@pytest.mark.parametrize("grey", [True, False])
def test_an_opaque_alpha_channel_is_not_foreground(tmp_path, compose_config, grey):
    root = tiny_davis(tmp_path / "DAVIS")
    results = tmp_path / "results" / "square"
    results.mkdir(parents=True)
    for path in davis.annotation_paths(root, "square"):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        _with_alpha(mask, grey).save(results / path.name)
        _with_alpha(mask, grey).save(path)  # the annotations too
    assert davis.read_mask(path).mean() == pytest.approx((mask > 0).mean())
    score = ["dataset.sequences=[square]", f"predictions={results.parent}"]
    assert run_evaluate(compose_config, root, *score) == 1.0


def test_annotations_are_paired_with_frames_by_number(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    folder = root / "Annotations" / "480p" / "square"
    for path in sorted(folder.iterdir(), reverse=True):
        path.rename(folder / f"{int(path.stem) + 1:05d}.png")
    with pytest.raises(ValueError, match=r"frames are numbered from 00000.*annotations from 00001"):
        davis.check_sequence(root, "square")
    with pytest.raises(RuntimeError, match="every sequence failed.*annotations from 00001"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]")


def test_two_files_for_one_frame_number_are_refused(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    frames = root / "JPEGImages" / "480p" / "square"
    cv2.imwrite(str(frames / "00002.png"), davis.read_image(frames / "00002.jpg"))
    with pytest.raises(ValueError, match=r"two files for frame 2.*00002\.jpg and 00002\.png"):
        davis.check_sequence(root, "square")
    (frames / "00002.png").unlink()
    results = tmp_path / "results" / "square"
    results.mkdir(parents=True)
    for path in davis.annotation_paths(root, "square"):
        (results / path.name).write_bytes(path.read_bytes())
    (results / "2.png").write_bytes(np.zeros(1).tobytes())
    score = ["dataset.sequences=[square]", f"predictions={results.parent}"]
    with pytest.raises(RuntimeError, match=r"two files for frame 2.*00002\.png and 2\.png"):
        run_evaluate(compose_config, root, *score)


@pytest.mark.parametrize("orientation", [3, 6])
def test_an_exif_rotated_frame_is_refused_by_name(tmp_path, compose_config, orientation):
    root = tiny_davis(tmp_path / "DAVIS")
    frame = root / "JPEGImages" / "480p" / "square" / "00001.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.open(frame).save(frame, exif=exif)
    with pytest.raises(ValueError, match=rf"00001\.jpg carries EXIF orientation {orientation}"):
        davis.read_image(frame)
    with pytest.raises(RuntimeError, match="every sequence failed.*EXIF orientation"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]")
    with pytest.raises(ValueError, match="EXIF orientation"):
        list(read_frames(frame.parent))


def test_a_frame_folder_with_unpadded_names_is_read_in_number_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(1, 13):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((8, 8, 3), index, np.uint8))
    assert [p.name for p in frame_files(folder)] == [f"{i}.png" for i in range(1, 13)]
    assert [int(frame[0, 0, 0]) for frame in read_frames(folder)] == list(range(1, 13))
    cv2.imwrite(str(folder / "01.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"01\.png and 1\.png.*same number"):
        frame_files(folder)


def test_a_truncated_frame_in_a_video_folder_is_refused_by_name(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS")
    folder = root / "JPEGImages" / "480p" / "square"
    frame = folder / "00003.jpg"
    frame.write_bytes(frame.read_bytes()[:600])
    with pytest.raises(ValueError, match=r"00003\.jpg.*truncated"):
        list(read_frames(folder))


@pytest.mark.parametrize(
    "box", [[-50, -50, -10, -10], [10, 10, 5, 40], [0, 0, 10_000, 40], [1.5, "a", 3, 4]]
)
def test_an_ablation_box_off_the_frame_is_refused(box):
    with pytest.raises(ValueError, match="ablation.region="):
        region_from_config(box, (96, 160), None)


def test_a_used_run_folder_is_not_reused_by_another_run(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS", sequences=("one", "two"))
    run_folder = tmp_path / "run"
    run_evaluate(
        compose_config, root, "dataset.sequences=[one]", "step2.beta=3.0", output_dir=run_folder
    )
    config = (run_folder / "config.yaml").read_text()
    with pytest.raises(FileExistsError, match=r"already holds a run.*resume=true"):
        run_evaluate(compose_config, root, "dataset.sequences=[two]", output_dir=run_folder)
    assert (run_folder / "config.yaml").read_text() == config
    with pytest.raises(ValueError, match=r"another config \(step2.beta: 3.0 -> 1.2"):
        run_evaluate(
            compose_config, root, "dataset.sequences=[two]", "resume=true", output_dir=run_folder
        )
    assert (run_folder / "config.yaml").read_text() == config


def test_resume_recomputes_what_its_inputs_changed(tmp_path, compose_config, caplog):
    root = tiny_davis(tmp_path / "DAVIS", sequences=("one", "two"), frames=5)
    checkpoint = tmp_path / "classifier.pt"
    checkpoint.write_bytes((REPO / "checkpoints" / "independent.pt").read_bytes())
    run_folder = tmp_path / "run"
    settings = ["dataset.sequences=[one,two]", f"checkpoint={checkpoint}"]
    run_evaluate(compose_config, root, *settings, output_dir=run_folder)
    scores = {name: run_folder / "scores" / f"{name}.json" for name in ("one", "two")}
    stamps = {name: path.stat().st_mtime_ns for name, path in scores.items()}

    def resume():
        caplog.clear()
        run_evaluate(compose_config, root, *settings, "resume=true", output_dir=run_folder)
        changed = {n for n, p in scores.items() if p.stat().st_mtime_ns != stamps[n]}
        stamps.update({name: path.stat().st_mtime_ns for name, path in scores.items()})
        return changed

    assert resume() == set()  # nothing changed: both reused
    # A frame added to one sequence (and its annotation): that sequence only.
    for kind, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
        folder = root / kind / "480p" / "two"
        (folder / f"00005.{suffix}").write_bytes((folder / f"00004.{suffix}").read_bytes())
    assert resume() == {"two"}
    assert len(json.loads(scores["two"].read_text())["J"]) == 6
    # Another classifier at the same path: both.
    torch.manual_seed(1)
    state = load_checkpoint(checkpoint)
    weights = {  # the learnt weights moved, the norms' running statistics kept (a variance > 0)
        k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() and "running" not in k else v
        for k, v in state["model_state"].items()
    }
    torch.save({**state, "model_state": weights}, checkpoint)
    assert resume() == {"one", "two"}
    assert "computed with another config, checkpoint or input files" in caplog.text


def test_a_reused_sweep_folder_reports_its_failed_jobs_as_failed(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS")
    sweep = tmp_path / "sweep"

    def multirun(values):
        return subprocess.run(
            [
                sys.executable,
                "evaluate.py",
                "-m",
                f"dataset.root={root}",
                "dataset.sequences=[square]",
                f"dataset.cache_dir={tmp_path / 'cache'}",
                "logger=none",
                "progress=false",
                f"step2.beta={values}",
                f"hydra.sweep.dir={sweep}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert multirun("1.2").returncode == 0
    config = (sweep / "0" / "config.yaml").read_text()
    again = multirun("3.0")
    assert again.returncode != 0 and "already holds a run" in again.stderr
    assert (sweep / "0" / "config.yaml").read_text() == config
    assert [row["status"] for row in collect_sweep(sweep)] == [
        "stale summary of an earlier job (this job failed or is unfinished)"
    ]


# Errors that name the key or file and say what to do.


def test_a_step2_value_of_the_wrong_kind_is_named(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    with pytest.raises(RuntimeError, match="step2.beta must be a number, got 'abc'"):
        run_evaluate(compose_config, root, "dataset.sequences=[square]", "step2.beta=abc")


def test_sequences_without_brackets_or_none_at_all(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    score = run_evaluate(compose_config, root, "dataset.sequences=square")
    assert score == run_evaluate(compose_config, root, "dataset.sequences=[square]")
    with pytest.raises(ValueError, match=r"dataset.sequences=\[\] lists no sequence"):
        run_evaluate(compose_config, root, "dataset.sequences=[]")


def test_checkpoints_that_cannot_classify_are_named(tmp_path):
    from nims.model import load_classifier
    from nims.unet import UNet

    shipped = load_checkpoint(REPO / "checkpoints" / "independent.pt")
    broken = {**shipped["model_state"]}
    broken["fc.weight"] = torch.full_like(broken["fc.weight"], float("nan"))
    torch.save({**shipped, "model_state": broken}, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan.pt holds NaN or infinite weights \(fc.weight"):
        load_classifier(tmp_path / "nan.pt")
    unet = UNet((32, 48), (4, 8))
    torch.save(
        {"model_state": unet.state_dict(), "architecture": unet.architecture(), "task": "crowd"},
        tmp_path / "unet.pt",
    )
    with pytest.raises(ValueError, match="unet.pt is a U-Net checkpoint.*method=unet"):
        load_classifier(tmp_path / "unet.pt")
    with pytest.raises(IsADirectoryError, match=r"is a folder: give the checkpoint file"):
        load_classifier(tmp_path)
    with pytest.raises(FileNotFoundError, match="relative to the working directory"):
        load_classifier("no/such.pt")


def test_a_damaged_cache_record_is_named_with_what_to_do(tmp_path):
    root = tiny_davis(tmp_path / "DAVIS")
    sequence = davis.FrameSequence(davis.image_paths(root, "square"))
    sequence_flows(sequence, DIS, tmp_path / "cache", "davis2016", "square")
    meta = sorted((tmp_path / "cache").rglob("meta.json"))[0]
    meta.write_text('{"flow": ')
    with pytest.raises(ValueError, match=r"meta.json is damaged.*delete .* to compute"):
        sequence_flows(sequence, DIS, tmp_path / "cache", "davis2016", "square")


def test_saved_masks_are_scored_without_frames(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    results = tmp_path / "results" / "square"
    results.mkdir(parents=True)
    for path in davis.annotation_paths(root, "square"):
        (results / path.name).write_bytes(path.read_bytes())
    for path in (root / "JPEGImages" / "480p" / "square").iterdir():
        path.unlink()
    (root / "JPEGImages" / "480p" / "square").rmdir()
    (root / "JPEGImages" / "480p").rmdir()
    (root / "JPEGImages").rmdir()
    score = ["dataset.sequences=[square]", f"predictions={results.parent}"]
    assert run_evaluate(compose_config, root, *score) == 1.0


@pytest.mark.parametrize(
    "config, override, message",
    [
        ("demo", "demo.frames=0", "demo.frames must be an integer >= 1"),
        ("demo", "demo.sequence=../..", r"demo.sequence=../.. is not a sequence name"),
        ("evaluate", "dataset=video", "dataset.max_frames must be an integer >= 1"),
    ],
)
def test_demo_and_video_counts_and_names(tmp_path, compose_config, config, override, message):
    from nims import demo

    root = tiny_davis(tmp_path / "DAVIS")
    settings = [f"dataset.root={root}", override]
    if config == "evaluate":
        settings = ["dataset=video", f"dataset.input={root}", "dataset.max_frames=0", "logger=none"]
    with pytest.raises((ValueError, RuntimeError), match=message):
        (demo.run if config == "demo" else evaluate.run)(compose_config(config, settings))


@pytest.mark.parametrize(
    "override, key",
    [
        ("dataset.frames=0", "dataset.frames=0"),
        ("dataset.size=[0,96]", r"dataset.size=\[0, 96\]"),
        ("dataset.people=[300,30]", r"dataset.people=\[300, 30\] .*lower first"),
    ],
)
def test_generator_settings_that_cannot_make_a_set(tmp_path, compose_config, override, key):
    from nims import generate

    cfg = compose_config(
        "generate", ["dataset=crowd_synth", f"dataset.cache_dir={tmp_path}", override]
    )
    with pytest.raises(ValueError, match=key):
        generate.run(cfg)


@pytest.mark.parametrize(
    "override, held", [("dataset.videos=3", "no frame"), ("dataset.frames_per_video=0", "no frame")]
)
def test_a_training_split_without_frames_is_named_before_training(
    tmp_path, compose_config, override, held
):
    from nims import train

    cfg = compose_config(
        "train",
        [
            "dataset=synthetic_scenes",
            "dataset.videos=10",
            override,
            "logger=none",
            "progress=false",
        ],
    )
    with pytest.raises(ValueError, match=rf"split of dataset=synthetic_scenes holds {held}"):
        train.run(cfg)


def test_resume_accepts_another_spelling_of_the_same_root(tmp_path, compose_config):
    root = tiny_davis(tmp_path / "DAVIS")
    run_folder = tmp_path / "run"
    run_evaluate(compose_config, root, "dataset.sequences=[square]", output_dir=run_folder)
    relative = Path(os.path.relpath(root)) / ".." / "DAVIS"
    assert str(relative) != str(root)
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={relative}",
            "logger=none",
            "progress=false",
            f"dataset.cache_dir={root.parent / 'cache'}",
            "dataset.sequences=[square]",
            "resume=true",
        ],
        output_dir=run_folder,
    )
    assert evaluate.run(cfg) > 0.0


def test_an_rgba_region_mask_is_read_by_its_colour(tmp_path):
    mask = np.zeros((96, 160), np.uint8)
    mask[20:40, 30:60] = 255
    _with_alpha(mask, grey=False).save(tmp_path / "region.png")
    region = region_from_config(str(tmp_path / "region.png"), (96, 160), None)
    assert region.sum() == 20 * 30


def test_a_failing_run_prints_one_clear_error(tmp_path):
    command = [
        sys.executable,
        "evaluate.py",
        f"dataset.root={tmp_path / 'nowhere'}",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and "FileNotFoundError: DAVIS root" in errors[0]
    assert "results in" not in done.stdout and "run failed" in done.stdout
    full = subprocess.run(
        command[:-1] + [f"hydra.run.dir={tmp_path / 'again'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert full.returncode == 1 and "Traceback" in full.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["+step2.alpha1=-0.05"],
            r"step2.alpha1 is not read by the configured step2=hierarchical: step2=light reads it",
        ),
        (
            ["step2=light", "step2.candidates=projection", "step2.min_angle=30"],
            r"step2.min_angle is not read .* with step2.candidates=projection: "
            r"step2.candidates=contrast",
        ),
        (
            ["step2=epipolar", "step2.evidence=relevance", "step2.relevance_floor=0.5"],
            r"step2.relevance_floor is not read .* with step2.evidence=relevance: "
            r"step2.evidence=relevance_x_distance",
        ),
    ],
)
def test_a_step2_setting_the_method_does_not_read_is_refused(
    tmp_path, compose_config, overrides, message
):
    root = tiny_davis(tmp_path / "DAVIS")
    with pytest.raises(ValueError, match=message):
        run_evaluate(compose_config, root, "dataset.sequences=[square]", *overrides)


def test_a_step2_setting_the_method_reads_is_taken():
    from nims.step2 import check_step2_overrides

    light = {"name": "light", "candidates": "projection", "alpha1": -0.01, "alpha2": 4.0}
    check_step2_overrides(light, ["alpha1", "alpha2", "name"])
    check_step2_overrides({**light, "candidates": "contrast"}, ["alpha1", "alpha2", "projection"])
    check_step2_overrides({"name": "hierarchical"}, ["beta", "parallax_step.name"])


def test_a_step2_node_holding_another_methods_key_is_refused():
    from nims.step2 import segment

    flow = np.zeros((40, 60, 2), np.float32)
    with pytest.raises(ValueError, match=r"step2=light has no setting step2.beta"):
        segment(flow, np.ones((40, 60), np.float32), {"name": "light", "beta": 1.2})
