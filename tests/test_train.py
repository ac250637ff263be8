"""Training on a tiny synthetic set: loss, checkpoints, determinism, resume, fine-tuning."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nims import train
from nims.frame_scores import mask_overlaps, mean_jaccard
from nims.model import MotionClassifier, load_checkpoint, load_classifier, save_checkpoint
from nims.objectives import DECISION_LOGITS, flip_augment, objective_for, rescaled

TINY = [
    "dataset=synthetic_scenes",
    "dataset.videos=10",
    "dataset.frames_per_video=6",
    "model.input_size=[32,48]",
    "model.channels=[4,8,8]",
    "trainer.batch_size=8",
    "trainer.lr=3e-3",
    "progress=false",
    "logger=none",
]


def history(folder):
    with (folder / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_training_lowers_the_loss_and_writes_checkpoints(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=4"]))
    folder = tmp_path / "run1"
    rows = history(folder)
    assert len(rows) == 4
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    for name in ("best.pt", "last.pt", "config.yaml", "test_metrics.json", "relevance.png"):
        assert (folder / name).is_file(), name
    test = json.loads((folder / "test_metrics.json").read_text())
    assert 0 <= test["test_accuracy"] <= 1
    checkpoint = load_checkpoint(folder / "best.pt")
    assert checkpoint["task"] == "independent" and checkpoint["config"]["trainer"]["epochs"] == 4
    assert torch.isfinite(checkpoint["model_state"]["input_low"]).all()


def test_checkpoint_reloads_to_identical_predictions(tmp_path, compose_config):
    cfg = compose_config("train", TINY + ["trainer.epochs=1"])
    train.run(cfg)
    model = load_classifier(tmp_path / "run1" / "last.pt", expected_task="independent")
    datasets = objective_for(cfg).datasets()
    flows = torch.stack([datasets["test"][i][0] for i in range(4)])
    again = load_classifier(tmp_path / "run1" / "last.pt")
    with torch.no_grad():
        assert torch.equal(model(flows), again(flows))


def test_same_seed_same_numbers(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=2"]))
    train.run(compose_config("train", TINY + ["trainer.epochs=2"]))
    assert history(tmp_path / "run1") == history(tmp_path / "run2")
    train.run(compose_config("train", TINY + ["trainer.epochs=2", "seed=1"]))
    assert history(tmp_path / "run3") != history(tmp_path / "run1")


def test_resume_continues_where_the_run_stopped(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=2"]))
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    train.run(
        compose_config(
            "train", TINY + ["trainer.epochs=2", f"resume={tmp_path / 'run2' / 'last.pt'}"]
        )
    )
    resumed = history(tmp_path / "run3")
    assert [row["epoch"] for row in resumed] == ["1", "2"]
    # Resumed = uninterrupted, bit for bit: weights, metrics, random states.
    assert resumed == history(tmp_path / "run1")
    uninterrupted = load_checkpoint(tmp_path / "run1" / "last.pt")
    continued = load_checkpoint(tmp_path / "run3" / "last.pt")
    for name, value in uninterrupted["model_state"].items():
        assert torch.equal(value, continued["model_state"][name]), name
    assert torch.equal(uninterrupted["rng_state"]["generator"], continued["rng_state"]["generator"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("dataset.videos=12", "dataset.videos"),
        ("seed=1", "seed"),
        ("trainer.lr=1e-3", "trainer.lr"),
    ],
)
def test_a_resume_with_other_data_or_optimiser_settings_is_refused(
    tmp_path, compose_config, override, key
):
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    last = tmp_path / "run1" / "last.pt"
    with pytest.raises(ValueError, match=rf"other settings \(.*(?<![.\w]){key}: "):
        train.run(compose_config("train", TINY + ["trainer.epochs=2", f"resume={last}", override]))
    # A checkpoint without the random states (an older or exported one) cannot be continued.
    state = load_checkpoint(last)
    del state["rng_state"]
    torch.save(state, tmp_path / "older.pt")
    with pytest.raises(ValueError, match="not a checkpoint train.py can continue.*init_from"):
        train.run(compose_config("train", TINY + [f"resume={tmp_path / 'older.pt'}"]))


def test_fine_tuning_the_last_layer_only(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    source = tmp_path / "run1" / "best.pt"
    train.run(
        compose_config(
            "train", TINY + ["trainer.epochs=2", f"init_from={source}", "trainer.trainable=fc"]
        )
    )
    before = load_checkpoint(source)["model_state"]
    after = load_checkpoint(tmp_path / "run2" / "last.pt")["model_state"]
    for name, value in before.items():
        if name.startswith("fc."):
            assert not torch.equal(value, after[name]), name
        else:
            assert torch.equal(value, after[name]), name


def test_checkpoint_of_another_task_or_architecture_is_refused(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    checkpoint = tmp_path / "run1" / "best.pt"
    with pytest.raises(ValueError, match="task 'independent', not 'crowd'"):
        train.run(compose_config("train", TINY + ["task=crowd", f"init_from={checkpoint}"]))
    with pytest.raises(ValueError, match="architecture"):
        train.run(
            compose_config("train", TINY + ["model.channels=[4,8,16]", f"init_from={checkpoint}"])
        )
    with pytest.raises(ValueError, match="task 'independent', not 'crowd'"):
        load_classifier(checkpoint, expected_task="crowd")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):
        load_classifier(broken)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_classifier(tmp_path / "missing.pt")


def test_crowd_task_trains_an_instance_norm_classifier(tmp_path, compose_config):
    train.run(compose_config("train", TINY + ["trainer.epochs=1", "task=crowd"]))
    model = load_classifier(tmp_path / "run1" / "best.pt", expected_task="crowd")
    assert model.norm == "instance"


def test_bad_training_options_are_named(compose_config):
    with pytest.raises(ValueError, match="trainer.trainable"):
        train.run(compose_config("train", TINY + ["trainer.trainable=conv"]))


def test_flip_augmentation_mirrors_the_motion():
    flows = torch.zeros(64, 2, 4, 6)
    flows[:, 0, :, :3] = 1.0  # left half moves right
    augmented = flip_augment(flows, torch.Generator().manual_seed(0))
    horizontally = augmented[:, 0, 0, 0] == 0  # the moving half went to the right side
    assert 0 < horizontally.sum() < 64
    torch.testing.assert_close(
        augmented[horizontally, 0, :, 3:], -torch.ones(int(horizontally.sum()), 4, 3)
    )
    assert torch.equal(
        augmented[~horizontally, 0, :, :3], torch.ones(int((~horizontally).sum()), 4, 3)
    )


def test_rescaled_batches_keep_the_motion_in_the_new_pixels():
    flows = torch.zeros(3, 2, 16, 32)
    flows[:, 0] = 2.0  # 2 px to the right at 32 columns
    flows[:, 1] = -1.0  # 1 px up at 16 rows
    larger = rescaled(flows, 1.5)  # 24 x 48: both sides multiples of 8
    assert larger.shape == (3, 2, 24, 48)
    torch.testing.assert_close(larger[:, 0], torch.full((3, 24, 48), 3.0))
    torch.testing.assert_close(larger[:, 1], torch.full((3, 24, 48), -1.5))
    smaller = rescaled(flows, 0.6)  # 9.6 x 19.2 rows and columns, rounded to 8 x 16
    assert smaller.shape == (3, 2, 8, 16)
    torch.testing.assert_close(smaller[:, 0], torch.full((3, 8, 16), 1.0))
    torch.testing.assert_close(smaller[:, 1], torch.full((3, 8, 16), -0.5))
    # A step of motion averages over the pixels it falls into when the batch shrinks.
    step = torch.zeros(1, 2, 16, 16)
    step[0, 0, :, :8] = 4.0
    halved = rescaled(step, 0.5)
    torch.testing.assert_close(halved[0, 0], torch.tensor([[2.0] * 4 + [0.0] * 4] * 8))
    assert rescaled(flows, 1.01) is flows  # rounds back to its own size


def test_a_fully_convolutional_classifier_takes_other_sizes_the_paper_head_does_not():
    flows = torch.randn(2, 2, 40, 64)
    assert MotionClassifier((32, 48), (4, 8, 8), head="max")(flows).shape == (2,)
    with pytest.raises(ValueError, match="multiples of 8"):
        MotionClassifier((32, 48), (4, 8, 8), head="max")(torch.randn(2, 2, 36, 64))
    with pytest.raises(ValueError, match=r"takes \(32, 48\)"):
        MotionClassifier((32, 48), (4, 8, 8), head="fc")(flows)


def test_training_at_several_scales_from_a_classifier_of_another_input_size(
    tmp_path, compose_config
):
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    source = tmp_path / "run1" / "best.pt"
    larger = ["model.input_size=[48,64]", "trainer.scales=[0.5,1.5]", "trainer.epochs=1"]
    train.run(compose_config("train", TINY + larger + [f"init_from={source}"]))
    model = load_classifier(tmp_path / "run2" / "best.pt")
    assert model.input_size == (48, 64)
    # LRP's dataset bounds were measured again at the new size, not carried over.
    assert torch.isfinite(model.input_low).all()
    before = load_checkpoint(source)["model_state"]["input_high"]
    assert not torch.equal(model.input_high, before)
    with pytest.raises(ValueError, match="model.head=fc reads a map of one size"):
        train.run(compose_config("train", TINY + ["model.head=fc", "trainer.scales=[0.5,1]"]))
    with pytest.raises(ValueError, match="trainer.scales must be"):
        train.run(compose_config("train", TINY + ["trainer.scales=[1.5,0.5]"]))
    with pytest.raises(ValueError, match="architecture"):
        train.run(
            compose_config(
                "train", TINY + ["model.head=fc", "model.input_size=[48,64]", f"init_from={source}"]
            )
        )


def test_training_on_a_task_set(tmp_path, compose_config):
    # The default dataset of a task is its synthetic set: generated, cached, then trained on.
    cfg = compose_config(
        "train",
        [
            "dataset.videos=6",
            "dataset.frames=3",
            "dataset.size=[64,112]",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "model.input_size=[32,48]",
            "model.channels=[4,8,8]",
            "trainer.epochs=1",
            "progress=false",
            "logger=none",
        ],
    )
    assert cfg.dataset.name == "independent_synth"
    train.run(cfg)
    assert load_classifier(tmp_path / "run1" / "best.pt").head == "max"


def test_mask_overlaps_known_answer():
    logits = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    masks = torch.tensor([[[0.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    intersections, unions = mask_overlaps(logits, masks, np.array([-2.0, 0.5, 2.5, 5.0]))
    # Frame 0: > -2 all 4 pixels (J 2/4), > 0.5 three (2/3), > 2.5 one (1/2), > 5 none (0/2);
    # frame 1 (empty truth): all 4, then nothing predicted (J 1, both empty).
    assert intersections.tolist() == [[2, 2, 1, 0], [0, 0, 0, 0]]
    assert unions.tolist() == [[4, 3, 2, 2], [4, 0, 0, 0]]
    np.testing.assert_allclose(
        mean_jaccard(intersections, unions), [0.25, (2 / 3 + 1) / 2, 0.75, 0.5]
    )


def test_random_crops_cut_flow_and_mask_together():
    from nims.objectives import random_crops

    batch = torch.arange(3 * 3 * 8 * 12, dtype=torch.float32).reshape(3, 3, 8, 12)
    crops = random_crops(batch, (4, 6), torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, 4, 6)
    for sample, crop in zip(batch, crops, strict=True):
        # Literal reference: find the window by its first value; every channel matches there.
        top, left = divmod(int(crop[0, 0, 0].item()) % 96, 12)
        torch.testing.assert_close(crop, sample[:, top : top + 4, left : left + 6])
    with pytest.raises(ValueError, match="model.train_crop"):
        random_crops(batch, (16, 6), torch.Generator())


def test_unet_takes_any_size_its_poolings_divide():
    from nims.unet import UNet

    unet = UNet((32, 48), (4, 8, 8)).eval()
    assert unet(torch.zeros(1, 2, 16, 24)).shape == (1, 16, 24)
    with pytest.raises(ValueError, match="multiples of 4"):
        unet(torch.zeros(1, 2, 18, 24))


def test_unet_masks_follow_its_decision_logit(tmp_path):
    from nims.methods.unet import SupervisedUNet
    from nims.unet import UNet, load_unet

    unet = UNet((32, 48), (4, 8))
    with torch.no_grad():
        unet.out.weight.zero_()
        unet.out.bias.fill_(1.5)  # every logit is 1.5
    state = {k: v for k, v in unet.state_dict().items() if k != "decision_logit"}
    save_checkpoint(tmp_path / "old.pt", unet, "crowd", {}, model_state=state)
    assert float(load_unet(tmp_path / "old.pt").decision_logit) == 0.0  # the former rule
    fresh = UNet((32, 48), (4, 8))
    fresh.decision_logit.fill_(3.0)
    fresh.load_state_dict(state)  # as train.py's resume and init_from load it
    assert float(fresh.decision_logit) == 0.0
    method = SupervisedUNet.__new__(SupervisedUNet)
    method.device, method.input_size = torch.device("cpu"), (32, 48)
    data = SimpleNamespace(flows=[np.zeros((64, 96, 2), np.float32)], n_frames=2)
    for decision, salient in ((1.0, True), (2.0, False)):
        unet.decision_logit.fill_(decision)
        method.model = unet.eval()
        result = method.predict(data)[0]
        assert result.mask.shape == (64, 96) and result.mask.all() == salient
        assert (result.saliency > 0.5).all() == salient


def test_supervised_unet_trains_and_is_evaluated(tmp_path, compose_config):
    from nims import evaluate
    from nims.unet import UNet, load_unet

    data = [
        "task=crowd",
        "dataset.videos=6",
        "dataset.frames=3",
        "dataset.size=[64,112]",
        "dataset.flow_source=analytic",
        "dataset.salient_fraction=1.0",
        f"dataset.cache_dir={tmp_path / 'cache'}",
    ]
    unet_training = data + [
        "model=unet",
        "model.input_size=[32,48]",
        "model.channels=[4,8]",
        "progress=false",
        "logger=none",
    ]
    train.run(compose_config("train", unet_training + ["trainer.epochs=2"]))
    rows = history(tmp_path / "run1")
    assert len(rows) == 2 and "val_J_mean_salient" in rows[0]
    unet = load_unet(tmp_path / "run1" / "best.pt", expected_task="crowd")
    assert isinstance(unet, UNet) and unet(torch.zeros(1, 2, 32, 48)).shape == (1, 32, 48)
    # best.pt decides at the logit its epoch's validation chose, and was picked by that J.
    best_row = max(rows, key=lambda row: float(row["val_J_calibrated"]))
    assert float(unet.decision_logit) == pytest.approx(float(best_row["val_decision_logit"]))
    assert float(unet.decision_logit) in DECISION_LOGITS
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    with pytest.raises(ValueError, match="not a U-Net"):
        load_unet(tmp_path / "run2" / "best.pt")
    result = compose_config(
        "evaluate",
        data
        + [
            "dataset=crowd_synth",
            "method=unet",
            "logger=none",
            f"checkpoint={tmp_path / 'run1' / 'best.pt'}",
        ],
    )
    evaluate.run(result)
    summary = json.loads((tmp_path / "run3" / "summary.json").read_text())
    assert 0 <= summary["J_mean_all_salient"] <= 1 and summary["salient_frames"] > 0
    with pytest.raises(ValueError, match="U-Net"):
        UNet((30, 48))
    # Trained on crops, it is validated on whole frames.
    train.run(
        compose_config("train", unet_training + ["model.train_crop=[16,24]", "trainer.epochs=1"])
    )
    cropped = history(tmp_path / "run4")
    assert len(cropped) == 1 and 0 <= float(cropped[0]["val_J_calibrated"]) <= 1


def test_a_run_says_what_it_trains_on_beside_the_shipped_recipe(tmp_path, compose_config, capsys):
    train.run(compose_config("train", TINY + ["trainer.epochs=1"]))
    printed = capsys.readouterr().out
    assert (
        "training classifier for task=independent on dataset=synthetic_scenes: 10 videos x 6"
        in (printed)
    )
    assert (
        "the shipped checkpoints/independent_synth.pt was trained on dataset=independent_synth: "
        "2400 videos x 8 frames at 128x224, 12 epochs"
    ) in printed
