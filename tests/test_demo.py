import json

import numpy as np
import torch

from nims import demo
from nims.model import MotionClassifier, save_checkpoint


def shipped_like_checkpoint(tmp_path, task="independent", norm="batch"):
    torch.manual_seed(0)
    path = tmp_path / f"{task}.pt"
    save_checkpoint(
        path, MotionClassifier((32, 48), (4, 8, 8), norm=norm, head="max").eval(), task, {}
    )
    return path


def test_demo_on_a_built_in_synthetic_video(tmp_path, compose_config, monkeypatch, capsys):
    monkeypatch.setenv("NIMS_DATA", str(tmp_path / "no-davis"))  # the default root: absent
    cfg = compose_config(
        "demo",
        [
            "demo.frames=4",
            f"demo.cache_dir={tmp_path / 'cache'}",
            f"checkpoint={shipped_like_checkpoint(tmp_path)}",
        ],
    )
    result = demo.run(cfg)
    folder = tmp_path / "run1"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"run folder: {folder}" and printed[-1] == f"results in {folder}"
    assert result["source"].startswith("synthetic independent_synth")
    assert result["frames"] == 4 and 0 <= result["J_mean"] <= 1
    for name in (
        "figure_00000.png",
        "figure_00003.png",
        "candidate_regions_00002.png",
        "layers_00000.png",
        "overview.png",
        "flow.flo",
        "config.yaml",
    ):
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "demo.json").read_text()) == result


def test_demo_on_a_real_davis_sequence_with_the_crowd_task(davis_root, tmp_path, compose_config):
    checkpoint = shipped_like_checkpoint(tmp_path, "crowd", "instance")
    cfg = compose_config(
        "demo",
        [
            f"dataset.root={davis_root}",
            "demo.sequence=car-shadow",
            "demo.frames=3",
            "task=crowd",
            f"checkpoint={checkpoint}",
            f"demo.cache_dir={tmp_path / 'cache'}",
        ],
    )
    result = demo.run(cfg)
    assert result["source"] == "DAVIS car-shadow" and result["step2"] == "light"
    assert len(result["J_per_frame"]) == 3


def test_demo_trains_a_classifier_when_none_is_shipped(tmp_path, compose_config, monkeypatch):
    monkeypatch.setenv("NIMS_DATA", str(tmp_path / "no-davis"))
    cfg = compose_config(
        "demo",
        [
            "demo.frames=3",
            f"demo.cache_dir={tmp_path / 'cache'}",
            f"checkpoint={tmp_path / 'missing.pt'}",
            "demo.train_videos=6",
        ],
    )
    result = demo.run(cfg)
    assert result["classifier"] == "trained in this run"
    assert (tmp_path / "run1" / "training" / "best.pt").is_file()


def test_label_figures_have_a_title_and_a_legend_at_full_resolution():
    from nims.visualize import label_image, label_legend, labels_figure, side_by_side

    labels = np.zeros((480, 854), dtype=np.int32)
    labels[:, 300:] = 1
    labels[100:200, 400:500] = 2
    figure = labels_figure(labels, "frame 3: 2 candidate regions", "region")
    assert figure.shape == (22 + 480 + 22, 854, 3)  # title bar, map, legend
    np.testing.assert_array_equal(figure[22:502], label_image(labels))
    legend = label_legend(labels, 854, "region")
    swatch = label_image(np.arange(3))[2]
    assert (legend == swatch).all(axis=2).any()  # region 2's colour is in the legend
    assert (figure[:22] < 128).any()  # the title is written
    titled = side_by_side([np.zeros((60, 90, 3), np.uint8)] * 2, height=60, titles=["a", "b"])
    assert titled.shape == (82, 180, 3)


def test_a_small_label_map_is_enlarged_and_its_legend_names_every_colour():
    from nims.visualize import label_image, labels_figure

    labels = np.repeat(np.arange(1, 8, dtype=np.int32), 32)[None].repeat(128, axis=0)  # 224 wide
    figure = labels_figure(labels, "frame 3: 7 motion layers", "layer")
    assert figure.shape[1] == 3 * 224  # enlarged to at least 640 pixels
    legend = figure[22 + 3 * 128 :]
    assert legend.shape[0] % 22 == 0
    for value, colour in enumerate(label_image(np.arange(8))[1:], start=1):
        assert (legend == colour).all(axis=2).sum() >= 100, f"layer {value} missing"


def test_the_demos_rendered_video_gets_the_classifier_for_rendered_scenes(
    tmp_path, compose_config, monkeypatch
):
    monkeypatch.setenv("NIMS_DATA", str(tmp_path / "no-davis"))
    cfg = compose_config("demo", ["demo.frames=2", f"demo.cache_dir={tmp_path / 'cache'}"])
    assert cfg.checkpoint == "checkpoints/independent.pt"  # DAVIS, real video
    result = demo.run(cfg)
    assert result["classifier"] == "checkpoints/independent_synth.pt"
    assert (
        "checkpoint: checkpoints/independent_synth.pt"
        in (tmp_path / "run1" / "config.yaml").read_text()
    )
