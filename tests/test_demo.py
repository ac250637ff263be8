import json

import torch

from nims import demo
from nims.model import MotionClassifier, save_checkpoint


def shipped_like_checkpoint(tmp_path, task="independent", norm="batch"):
    torch.manual_seed(0)
    path = tmp_path / f"{task}.pt"
    save_checkpoint(path, MotionClassifier((32, 48), (4, 8, 8), norm=norm).eval(), task, {})
    return path


def test_demo_on_a_built_in_synthetic_video(tmp_path, compose_config, monkeypatch):
    monkeypatch.setenv("NIMS_DATA", str(tmp_path / "no-davis"))  # the default root: absent
    cfg = compose_config("demo", ["demo.frames=4",
                                  f"demo.cache_dir={tmp_path / 'cache'}",
                                  f"checkpoint={shipped_like_checkpoint(tmp_path)}"])
    result = demo.run(cfg)
    folder = tmp_path / "run1"
    assert result["source"].startswith("synthetic independent_synth")
    assert result["frames"] == 4 and 0 <= result["J_mean"] <= 1
    for name in ("figure_00000.png", "figure_00003.png", "candidate_regions_00002.png",
                 "layers_00000.png", "overview.png", "flow.flo", "config.yaml"):
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "demo.json").read_text()) == result


def test_demo_on_a_real_davis_sequence_with_the_crowd_task(davis_root, tmp_path, compose_config):
    checkpoint = shipped_like_checkpoint(tmp_path, "crowd", "instance")
    cfg = compose_config("demo", [f"dataset.root={davis_root}", "demo.sequence=car-shadow",
                                  "demo.frames=3", "task=crowd", f"checkpoint={checkpoint}",
                                  f"demo.cache_dir={tmp_path / 'cache'}"])
    result = demo.run(cfg)
    assert result["source"] == "DAVIS car-shadow" and result["step2"] == "light"
    assert len(result["J_per_frame"]) == 3


def test_demo_trains_a_classifier_when_none_is_shipped(tmp_path, compose_config, monkeypatch):
    monkeypatch.setenv("NIMS_DATA", str(tmp_path / "no-davis"))
    cfg = compose_config("demo", ["demo.frames=3",
                                  f"demo.cache_dir={tmp_path / 'cache'}",
                                  f"checkpoint={tmp_path / 'missing.pt'}",
                                  "demo.train_videos=6"])
    result = demo.run(cfg)
    assert result["classifier"] == "trained in this run"
    assert (tmp_path / "run1" / "training" / "best.pt").is_file()
