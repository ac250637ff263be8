import json

import numpy as np
import pytest
import torch

from nims import ablation
from nims.model import MotionClassifier, save_checkpoint
from nims.synthetic.pairs import affine_field, layered_flow

BACKGROUND = np.array([[0.5, 0.004, -0.002], [-0.3, 0.001, 0.003]])


def scene():
    layers = np.ones((80, 120), dtype=np.int32)
    layers[30:50, 40:70] = 2
    moving = BACKGROUND.copy()
    moving[:, 0] += [5.0, -2.0]
    return layered_flow(layers, [BACKGROUND, moving]), layers == 2


def test_inpainting_restores_the_surrounding_motion():
    flow, region = scene()
    inpainted = ablation.inpaint_region(flow, region)
    np.testing.assert_allclose(inpainted, affine_field(BACKGROUND, flow.shape[:2]), atol=1e-3)
    np.testing.assert_array_equal(inpainted[~region], flow[~region])


def test_bad_regions_are_named():
    flow, region = scene()
    with pytest.raises(ValueError, match="empty"):
        ablation.inpaint_region(flow, np.zeros_like(region))
    with pytest.raises(ValueError, match="frame's size"):
        ablation.inpaint_region(flow, region[:-1])
    with pytest.raises(ValueError, match="whole frame"):
        ablation.inpaint_region(flow, np.ones_like(region))


def test_ablation_scores_and_the_other_motion():
    torch.manual_seed(0)
    model = MotionClassifier((32, 48), (4, 8, 8)).eval()
    flow, region = scene()
    result = ablation.ablate(model, flow, region)
    assert 0 <= result.before <= 1 and 0 <= result.after <= 1
    assert result.flipped == (result.before > 0.5 >= result.after)
    assert ablation.largest_other_motion(flow, region) is None  # nothing else moves
    box = ablation.region_from_config([40, 30, 70, 50], flow.shape[:2], None)
    assert np.array_equal(box, region)


def test_batch_ablation_on_a_synthetic_set(tmp_path, compose_config):
    torch.manual_seed(0)
    checkpoint = tmp_path / "independent.pt"
    model = MotionClassifier((32, 48), (4, 8, 8)).eval()
    with torch.no_grad():
        model.fc.bias.fill_(5.0)  # every frame called salient, so every one can be ablated
    save_checkpoint(checkpoint, model, "independent", {})
    cfg = compose_config(
        "ablate",
        [
            "dataset=independent_synth",
            "dataset.videos=5",
            "dataset.salient_fraction=1.0",
            "dataset.frames=3",
            "dataset.size=[64,112]",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"checkpoint={checkpoint}",
        ],
    )
    summary = ablation.run(cfg)
    assert json.loads((tmp_path / "run1" / "summary.json").read_text()) == summary
    assert summary["frames"] > 0
    assert 0 <= summary["flip_rate_salient_removed"] <= 1
    rows = (tmp_path / "run1" / "ablation.csv").read_text().splitlines()
    assert len(rows) == summary["frames"] + 1


def test_single_frame_ablation_on_davis(davis_root, tmp_path, compose_config):
    torch.manual_seed(0)
    checkpoint = tmp_path / "independent.pt"
    save_checkpoint(checkpoint, MotionClassifier((32, 48), (4, 8, 8)).eval(), "independent", {})
    cfg = compose_config(
        "ablate",
        [
            f"dataset.root={davis_root}",
            "ablation.sequence=car-shadow",
            "ablation.frame=4",
            f"checkpoint={checkpoint}",
        ],
    )
    summary = ablation.run(cfg)
    assert summary["region"] == "gt" and 0 <= summary["salient_after"] <= 1
    wrong = compose_config(
        "ablate", [f"dataset.root={davis_root}", "task=crowd", f"checkpoint={checkpoint}"]
    )
    with pytest.raises(ValueError, match="task 'independent', not 'crowd'"):
        ablation.run(wrong)
