"""Scoring a results folder end to end: python evaluate.py predictions=<dir>."""

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from nims import evaluate, metrics, reference
from nims.data import davis
from tests.conftest import REPO

SEQUENCES = ["blackswan", "libby"]


def copy_annotations(davis_root, destination, sequences=SEQUENCES, first_index=0, transform=None):
    """A results folder made from the ground truth (optionally altered), numbered from
    ``first_index``."""
    for sequence in sequences:
        folder = destination / sequence
        folder.mkdir(parents=True)
        for index, path in enumerate(davis.annotation_paths(davis_root, sequence)):
            mask = davis.read_mask(path)
            if transform is not None:
                mask = transform(mask, index)
            cv2.imwrite(str(folder / f"{index + first_index:05d}.png"), mask.astype(np.uint8) * 255)
    return destination


def overrides(davis_root, predictions, *extra):
    return [
        f"dataset.root={davis_root}",
        f"predictions={predictions}",
        f"dataset.sequences=[{','.join(SEQUENCES)}]",
        "logger=none",
        *extra,
    ]


@pytest.mark.parametrize("first_index", [0, 1])
def test_ground_truth_scores_perfectly(davis_root, tmp_path, compose_config, first_index):
    predictions = copy_annotations(davis_root, tmp_path / "results", first_index=first_index)
    cfg = compose_config(
        "evaluate", overrides(davis_root, predictions, f"predictions_first_index={first_index}")
    )
    assert evaluate.run(cfg) == 1.0
    run_folder = tmp_path / "run1"
    summary = json.loads((run_folder / "summary.json").read_text())
    assert summary["J_mean"] == summary["F_mean"] == summary["J_recall"] == 1.0
    assert summary["J_decay"] == 0.0
    for name in ("config.yaml", "per_frame.csv", "per_sequence.csv", "summary.md"):
        assert (run_folder / name).is_file(), name
    assert "| J&F |" in (run_folder / "summary.md").read_text()


def test_scores_match_the_toolkit_on_altered_masks(davis_root, tmp_path, compose_config):
    kernel = np.ones((9, 9), np.uint8)

    def alter(mask, index):
        # Alternate dilated, eroded and shifted masks: a realistic spread of scores.
        if index % 3 == 0:
            return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        if index % 3 == 1:
            return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
        return np.roll(mask, 15, axis=1)

    predictions = copy_annotations(davis_root, tmp_path / "results", transform=alter)
    evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    expected = {}
    for sequence in SEQUENCES:
        annotations = [davis.read_mask(p) for p in davis.annotation_paths(davis_root, sequence)]
        altered = [alter(a, i) for i, a in enumerate(annotations)]
        j = [
            reference.davis_toolkit_jaccard(a, p) for p, a in zip(altered, annotations, strict=True)
        ]
        f = [
            reference.davis_toolkit_f_measure(p, a)
            for p, a in zip(altered, annotations, strict=True)
        ]
        expected[sequence] = {
            "J": reference.davis_toolkit_statistics(j),
            "F": reference.davis_toolkit_statistics(f),
        }
    for key, value in metrics.dataset_summary(expected).items():
        assert summary[key] == pytest.approx(value, abs=1e-6), key
    # per_frame.csv: averaging its scored rows gives the reported J; all rows would not.
    rows = list(csv.DictReader((tmp_path / "run1" / "per_frame.csv").open()))
    scored = [
        np.mean([float(r["J"]) for r in rows if r["sequence"] == s and r["scored"] == "True"])
        for s in SEQUENCES
    ]
    assert np.mean(scored) == pytest.approx(summary["J_mean"], abs=1e-9)
    assert sum(r["scored"] == "False" for r in rows) == 2 * len(SEQUENCES)


def test_missing_scored_frame_names_the_file(davis_root, tmp_path, compose_config):
    predictions = copy_annotations(davis_root, tmp_path / "results")
    (predictions / "libby" / "00010.png").unlink()
    # The other sequences are scored; the run fails naming the missing file.
    with pytest.raises(RuntimeError, match=r"libby: FileNotFoundError.*00010\.png"):
        evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))


def test_unscored_end_frames_may_be_missing(davis_root, tmp_path, compose_config):
    predictions = copy_annotations(davis_root, tmp_path / "results")
    for sequence, count in (("blackswan", 50), ("libby", 49)):
        (predictions / sequence / "00000.png").unlink()
        (predictions / sequence / f"{count - 1:05d}.png").unlink()
    assert evaluate.run(compose_config("evaluate", overrides(davis_root, predictions))) == 1.0


def test_numbering_is_never_guessed(davis_root, tmp_path, compose_config):
    # 00001..00049 for 50 annotations fits both numberings: the official one (0) is used
    # unless the user says otherwise, whatever the files would fit.
    predictions = copy_annotations(davis_root, tmp_path / "results")
    for sequence in SEQUENCES:
        (predictions / sequence / "00000.png").unlink()
    assert evaluate.run(compose_config("evaluate", overrides(davis_root, predictions))) == 1.0
    shifted = overrides(davis_root, predictions, "predictions_first_index=1")
    assert evaluate.run(compose_config("evaluate", shifted)) < 0.95
    # A 0-numbered folder without 00001 misses frame 1; it is not read as 1-numbered.
    for sequence in SEQUENCES:
        (predictions / sequence / "00001.png").unlink()
    with pytest.raises(RuntimeError, match=r"frame 1 missing.*predictions_first_index=1 if"):
        evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))


def test_size_mismatch_names_the_file(davis_root, tmp_path, compose_config):
    predictions = copy_annotations(davis_root, tmp_path / "results")
    cv2.imwrite(str(predictions / "blackswan" / "00005.png"), np.zeros((240, 427), np.uint8))
    with pytest.raises(RuntimeError, match=r"blackswan.00005\.png.*427x240"):
        evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))


def test_missing_sequence_and_missing_root_are_named(davis_root, tmp_path, compose_config):
    predictions = copy_annotations(davis_root, tmp_path / "results", sequences=["blackswan"])
    with pytest.raises(RuntimeError, match="libby: FileNotFoundError"):
        evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))
    with pytest.raises(FileNotFoundError, match="dataset.root"):
        evaluate.run(compose_config("evaluate", overrides(tmp_path / "nowhere", predictions)))
    # No sequence list: the split's sequences present under the root, strictly on request.
    with pytest.raises(FileNotFoundError, match="bmx-trees.*dataset.strict=false"):
        evaluate.run(
            compose_config(
                "evaluate",
                [
                    f"dataset.root={davis_root}",
                    f"predictions={predictions}",
                    "logger=none",
                    "dataset.strict=true",
                ],
            )
        )
    with pytest.raises(RuntimeError, match="car-shadow: FileNotFoundError"):
        evaluate.run(
            compose_config(
                "evaluate",
                [f"dataset.root={davis_root}", f"predictions={predictions}", "logger=none"],
            )
        )


def test_a_partial_davis_copy_scores_the_sequences_it_holds(
    davis_root, tmp_path, compose_config, caplog
):
    present = ["blackswan", "car-shadow", "libby", "parkour"]
    predictions = copy_annotations(davis_root, tmp_path / "results", sequences=present)
    cfg = compose_config(
        "evaluate",
        [f"dataset.root={davis_root}", f"predictions={predictions}", "logger=none"],
        output_dir=tmp_path / "run",
    )
    assert evaluate.run(cfg) == 1.0
    assert "16 of the 20 val sequences" in caplog.text and "bmx-trees" in caplog.text
    rows = (tmp_path / "run" / "per_sequence.csv").read_text().splitlines()
    assert sorted(row.split(",")[0] for row in rows[1:]) == present


def test_unreadable_mask_names_the_file(davis_root, tmp_path, compose_config):
    predictions = copy_annotations(davis_root, tmp_path / "results")
    (predictions / "libby" / "00003.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(RuntimeError, match=r"libby.00003\.png"):
        evaluate.run(compose_config("evaluate", overrides(davis_root, predictions)))


def test_multirun_gives_each_job_its_own_folder(davis_root, tmp_path):
    predictions = copy_annotations(davis_root, tmp_path / "results", sequences=["blackswan"])
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "evaluate.py",
        "-m",
        f"dataset.root={davis_root}",
        f"predictions={predictions}",
        "dataset.sequences=[blackswan]",
        "logger=none",
        "report_frames=2,4",
        f"hydra.sweep.dir={sweep}",
    ]
    done = subprocess.run(
        command, cwd=REPO, check=True, capture_output=True, text=True, timeout=300
    )
    assert f"sweep folder: {sweep}" in done.stdout and f"run folder: {sweep / '1'}" in done.stdout
    for job in ("0", "1"):
        assert json.loads((sweep / job / "summary.json").read_text())["J&F"] == 1.0
        assert "predictions_first_index" in (sweep / job / "config.yaml").read_text()


def test_wandb_offline_run_is_written_in_the_run_folder(
    davis_root, tmp_path, compose_config, monkeypatch, capsys
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    predictions = copy_annotations(davis_root, tmp_path / "results", sequences=["blackswan"])
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            f"predictions={predictions}",
            "dataset.sequences=[blackswan]",
            "logger=wandb",
        ],
    )
    assert cfg.logger.mode == "offline"
    evaluate.run(cfg)
    (offline,) = (tmp_path / "run1" / "wandb").glob("offline-run-*")
    assert f"wandb sync {offline}" in capsys.readouterr().out
    # Online without a key: one line saying what to do, before any sequence runs.
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    online = compose_config("evaluate", list(cfg.hydra.overrides.task))
    with pytest.raises(ValueError, match="no W&B key: run `wandb login`"):
        evaluate.run(online)


def test_nims_sweep_and_its_report(davis_root, tmp_path):
    # A 2-job NIMS multirun on a real sequence (random classifier: the plumbing is under test),
    # then the report, which must also tolerate a job that left no summary.
    import torch

    from nims.model import MotionClassifier, save_checkpoint

    torch.manual_seed(0)
    checkpoint = tmp_path / "independent.pt"
    save_checkpoint(checkpoint, MotionClassifier((32, 48), (4, 8, 8)).eval(), "independent", {})
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "evaluate.py",
        "-m",
        f"dataset.root={davis_root}",
        f"checkpoint={checkpoint}",
        "dataset.sequences=[car-shadow]",
        "logger=none",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "step2.beta=1.2,1.6",
        f"hydra.sweep.dir={sweep}",
    ]
    done = subprocess.run(
        command, cwd=REPO, check=True, capture_output=True, text=True, timeout=600
    )
    for job in ("0", "1"):
        assert (sweep / job / "Segmentations" / "480p" / "nims" / "car-shadow").is_dir()
        assert 0 <= json.loads((sweep / job / "summary.json").read_text())["J&F"] <= 1
    # The multirun wrote its summary itself: the swept key is a column, the shared ones not.
    assert f"sweep summary: {sweep / 'sweep.md'}" in done.stdout
    header = (sweep / "sweep.csv").read_text().splitlines()[0]
    assert "step2.beta" in header and "dataset.sequences" not in header
    (sweep / "2").mkdir()  # a job that died before writing its summary
    report = subprocess.run(
        [sys.executable, "-m", "nims.sweep", str(sweep)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "J&F" in report.stdout
    lines = (sweep / "sweep.csv").read_text().splitlines()
    assert len(lines) == 4 and "step2.beta" in lines[0]
    assert "no summary" in lines[3]
    assert (sweep / "sweep.md").is_file() and (sweep / "sweep.png").stat().st_size > 0


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_sweep(davis_root, tmp_path):
    # The SLURM launcher's local twin: same submitit machinery, jobs run as local processes.
    predictions = copy_annotations(davis_root, tmp_path / "results", sequences=["blackswan"])
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "evaluate.py",
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        f"dataset.root={davis_root}",
        f"predictions={predictions}",
        "dataset.sequences=[blackswan]",
        "logger=none",
        "step2.beta=1.2,1.6",
        f"hydra.sweep.dir={sweep}",
    ]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    for job in ("0", "1"):
        assert json.loads((sweep / job / "summary.json").read_text())["J&F"] == 1.0


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(
            "evaluate",
            ["hydra/launcher=slurm", "hydra.launcher.partition=cpu"],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher.partition == "cpu" and cfg.hydra.launcher.cpus_per_task == 4
    assert "SlurmLauncher" in cfg.hydra.launcher._target_


def test_resume_a_run_folder_with_a_subset_keeps_the_rest(tmp_path, compose_config, capsys):
    from tests.conftest import tiny_davis

    root = tiny_davis(tmp_path / "DAVIS", sequences=("one", "two"))
    common = [
        f"dataset.root={root}",
        "logger=none",
        "progress=false",
        f"dataset.cache_dir={tmp_path / 'cache'}",
    ]
    first = tmp_path / "first"
    evaluate.run(
        compose_config("evaluate", common + ["dataset.sequences=[one,two]"], output_dir=first)
    )
    before = (first / "per_sequence.csv").read_text()
    capsys.readouterr()
    evaluate.run(
        compose_config(
            "evaluate",
            common + ["dataset.sequences=[one]", f"resume={first}"],
            output_dir=tmp_path / "second",
        )
    )
    printed = capsys.readouterr().out
    assert f"run folder: {first}" in printed and "| Sequence | J-Mean | J-Recall" in printed
    assert "| two |" in printed
    assert (first / "per_sequence.csv").read_text() == before
    assert not (tmp_path / "second" / "config.yaml").exists()
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        evaluate.run(compose_config("evaluate", common + [f"resume={tmp_path / 'nowhere'}"]))


def test_progress_bars_cover_flows_and_frames_unless_silenced(
    tmp_path, compose_config, capsys, monkeypatch
):
    import sys

    from tests.conftest import tiny_davis

    root = tiny_davis(tmp_path / "DAVIS", sequences=("square",))
    common = [
        f"dataset.root={root}",
        "logger=none",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "dataset.sequences=[square]",
    ]
    # Redirected (not a terminal, as under pytest): no bars, whose updates would fill the file.
    evaluate.run(compose_config("evaluate", common + ["progress=true"]))
    assert "sequences" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal
    evaluate.run(compose_config("evaluate", common + ["progress=true"]))
    bars = capsys.readouterr().err
    assert "sequences" in bars and "square flow" in bars and "square:" in bars
    evaluate.run(compose_config("evaluate", common + ["progress=false"]))
    assert "sequences" not in capsys.readouterr().err


def test_a_sweep_without_scores_draws_no_empty_plot(tmp_path, recwarn):
    from nims.sweep import plot_sweep

    rows = [
        {"job": 0, "status": "done", "dataset.step": "1", "frames": 10},
        {"job": 1, "status": "done", "dataset.step": "2", "frames": 5},
    ]
    assert plot_sweep(rows, tmp_path / "sweep.png") is None
    assert not (tmp_path / "sweep.png").exists() and not recwarn.list


def test_a_crowd_sweep_over_alpha_sweeps(tmp_path):
    # The crowd task's default candidates (against the crowd) read alpha1 and alpha2: a sweep
    # over them with the defaults otherwise gives jobs that differ.
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "evaluate.py",
        "-m",
        "task=crowd",
        "dataset=crowd_synth",
        "dataset.videos=6",
        "dataset.frames=2",
        "+dataset.eval_split=all",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "logger=none",
        "report_frames=0",
        "step2.alpha1=-0.01,-1.0",
        f"hydra.sweep.dir={sweep}",
    ]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True, timeout=600)
    scores = [json.loads((sweep / job / "summary.json").read_text()) for job in ("0", "1")]
    assert scores[0]["salient_frames"] > 0
    assert scores[0]["J_mean_all_salient"] != scores[1]["J_mean_all_salient"]
