import json

from nims import demo


def test_demo_on_the_built_in_synthetic_scene(tmp_path, compose_config):
    cfg = compose_config("demo", [f"dataset.root={tmp_path / 'no-davis'}"])
    result = demo.run(cfg)
    folder = tmp_path / "run1"
    assert result["source"].startswith("synthetic")
    assert result["layers"] >= 2 and result["candidate_regions"] >= 2
    for name in ("frame.png", "flow.png", "layers.png", "candidate_regions.png", "overview.png",
                 "flow.flo", "config.yaml"):
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "demo.json").read_text()) == result


def test_demo_on_a_real_davis_sequence(davis_root, compose_config):
    cfg = compose_config("demo", [f"dataset.root={davis_root}", "demo.sequence=car-shadow",
                                  "demo.frame=5", "beta=1.2"])
    result = demo.run(cfg)
    assert result["source"] == "DAVIS car-shadow frame 5"
    assert result["layers"] >= 2
