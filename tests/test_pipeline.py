"""NIMS end to end: the pipeline on flows, and evaluate.py on DAVIS sequences and synthetic sets."""

import csv
import json
import logging

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nims import evaluate
from nims.attribution import at_flow_resolution
from nims.frame_threads import map_frames
from nims.methods.nims import empty_result, run_frames, sequence_results
from nims.model import MotionClassifier, save_checkpoint
from nims.step2 import Segmentation, oracle_mask
from nims.synthetic.pairs import layered_flow

PIPELINE = OmegaConf.create(
    {
        "attribution": {
            "name": "lrp",
            "rules": {
                "first_layer": "zbeta",
                "other_layers": "zplus",
                "bounds": "sample",
                "low": None,
                "high": None,
            },
        },
        "step2": {
            "name": "hierarchical",
            "beta": 1.6,
            "scale": "mad",
            "min_outliers": 50,
            "max_layers": 32,
            "min_region": 50,
            "connectivity": 8,
        },
        "saliency": {"lam": 0.15, "mask_threshold": 0.0},
        "batch_size": 4,
    }
)


def classifier(norm="batch", seed=0, input_size=(32, 48), head="fc"):
    torch.manual_seed(seed)
    return MotionClassifier(input_size, (4, 8, 8), (5, 3, 3), norm, head).eval()


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "independent.pt"
    save_checkpoint(path, classifier(), "independent", {})
    return path


def moving_square_flows(count=3):
    layers = np.ones((60, 90), dtype=np.int32)
    layers[20:40, 30:55] = 2
    motions = [
        np.array([[0.5, 0.002, 0.0], [0.2, 0.0, 0.001]]),
        np.array([[4.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]),
    ]
    flow = layered_flow(layers, motions)
    return [flow + np.float32(0.01 * k) for k in range(count)], layers == 2


def test_pipeline_outputs_per_frame():
    flows, _ = moving_square_flows()
    results = run_frames(classifier(), flows, PIPELINE, batch_size=2)
    assert len(results) == 3
    for result in results:
        assert result.relevance.shape == result.saliency.shape == result.mask.shape == (60, 90)
        assert np.isfinite(result.logit)
        assert not (result.mask & ~result.segmentation.salient_mask).any()
        assert ((result.saliency >= 0) & (result.saliency < 1)).all()


def test_frames_on_two_threads_give_the_results_of_one(monkeypatch):
    flows, _ = moving_square_flows(count=5)
    model = classifier()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    alone = run_frames(model, flows, PIPELINE, batch_size=2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    threaded = run_frames(model, flows, PIPELINE, batch_size=2)
    for one, two in zip(alone, threaded, strict=True):
        assert np.array_equal(one.mask, two.mask)
        np.testing.assert_allclose(one.saliency, two.saliency, atol=1e-6)  # float rounding
        assert one.logit == two.logit


def test_map_frames_keeps_the_order_and_raises_for_the_failing_item():
    assert list(map_frames(lambda k: k * k, range(7), workers=3)) == [k * k for k in range(7)]

    def fail_on_three(k):
        if k == 3:
            raise ValueError("frame 3")
        return k

    with pytest.raises(ValueError, match="frame 3"):
        list(map_frames(fail_on_three, range(6), workers=2))


def test_each_frame_is_decided_and_interpreted_at_its_surest_scale():
    from nims.attribution import attribute_flows, to_model_input

    flows, _ = moving_square_flows(4)
    model = MotionClassifier((32, 48), (4, 8, 8), (5, 3, 3), "instance", head="max").eval()
    one = run_frames(model, flows, PIPELINE, batch_size=3)

    def scaled(offsets):
        cfg = {"decision": {"scales": [1.0, 2.0], "offsets": offsets}}
        return run_frames(model, flows, OmegaConf.merge(PIPELINE, cfg), batch_size=3)

    # Known answers: the second reading is the flow at 64 x 96, its logits those of the model
    # on that batch; with an offset no logit reaches, every frame stays with the first.
    with torch.no_grad():
        twice = model(to_model_input(flows, (64, 96))).numpy()
    for result, alone in zip(scaled([0.0, 1e6]), one, strict=True):
        assert result.logit == alone.logit
        np.testing.assert_array_equal(result.relevance, alone.relevance)
    for result, flow, logit in zip(scaled([0.0, -1e6]), flows, twice, strict=True):
        assert result.logit == pytest.approx(logit + 1e6)
        expected = attribute_flows(model, [flow], PIPELINE.attribution, scale=2.0).relevance[0]
        assert expected.shape == (64, 96) and result.relevance.shape == flow.shape[:2]
        np.testing.assert_allclose(
            result.relevance, at_flow_resolution(expected, flow.shape), rtol=1e-5, atol=1e-7
        )
    bad = OmegaConf.merge(PIPELINE, {"decision": {"scales": [1.0, 2.0], "offsets": [0.0]}})
    with pytest.raises(ValueError, match="decision.scales"):
        run_frames(model, flows, bad)
    paper = classifier()  # the flattened head reads one size only
    cfg = OmegaConf.merge(PIPELINE, {"decision": {"scales": [1.0, 2.0]}})
    with pytest.raises(ValueError, match="reads a map of one size"):
        run_frames(paper, flows, cfg)


def test_each_frame_is_decided_with_its_neighbours_across_batches():
    from nims.attribution import decision_logits

    flows, _ = moving_square_flows(5)
    flows = [
        flow * np.float32(scale) for flow, scale in zip(flows, (1, -3, 2, 0.5, -1), strict=True)
    ]
    model = classifier(seed=3)
    alone = [result.logit for result in run_frames(model, flows, PIPELINE, batch_size=2)]
    mirrored = OmegaConf.merge(PIPELINE, {"decision": {"flips": 4, "window": 1}})
    four = [result.logit for result in run_frames(model, flows, mirrored, batch_size=2)]
    for flips, logits in ((1, alone), (4, four)):
        cfg = OmegaConf.merge(PIPELINE, {"decision": {"flips": flips, "window": 3}})
        windowed = run_frames(model, flows, cfg, batch_size=2)  # windows cross batches
        np.testing.assert_allclose(
            [result.logit for result in windowed], decision_logits(logits, 3), rtol=1e-6
        )
    assert run_frames(model, [], cfg) == []
    # The gate reads the windowed decision: the bias puts frames on both sides of 0.
    with torch.no_grad():
        model.fc.bias += 0.015
    gated = OmegaConf.merge(cfg, {"saliency": {"gate": True}})
    open_results = run_frames(model, flows, cfg, batch_size=3)
    gated_results = run_frames(model, flows, gated, batch_size=3)
    decisions = np.array([result.logit for result in gated_results])
    assert (decisions > 0).any() and (decisions <= 0).any()
    for decision, found, kept in zip(decisions, open_results, gated_results, strict=True):
        assert np.array_equal(kept.mask, found.mask if decision > 0 else np.zeros_like(found.mask))
    assert any(found.mask.any() for found in open_results[:3] if found.logit <= 0)


def test_gate_empties_frames_called_non_salient():
    from nims.methods.nims import nims_frame

    flows, truth = moving_square_flows(1)
    relevance = np.where(truth, 1.0, 0.0)
    open_cfg = OmegaConf.merge(PIPELINE, {"saliency": {"gate": False}})
    gated_cfg = OmegaConf.merge(PIPELINE, {"saliency": {"gate": True}})
    found = nims_frame(flows[0], relevance, -0.5, open_cfg)
    assert found.mask.sum() > 0.9 * truth.sum()
    for logit in (-0.5, 0.0):
        gated = nims_frame(flows[0], relevance, logit, gated_cfg)
        assert not gated.mask.any() and not gated.saliency.any()
        assert gated.segmentation.candidate_regions.max() >= 2  # the regions stay for the oracle
    kept = nims_frame(flows[0], relevance, 0.5, gated_cfg)
    assert np.array_equal(kept.mask, found.mask)


@pytest.mark.parametrize("evidence", [None, "relevance_x_residual", "relevance"])
def test_relevance_ablated_selects_nims_regions_by_the_residual_not_the_relevance(evidence):
    from nims.baselines import residual_magnitude
    from nims.methods.nims import nims_frame
    from nims.methods.relevance_ablated import RelevanceAblated

    flows, truth = moving_square_flows(1)
    # The gate is on, and a method without a classifier (NaN logit) is never gated by it.
    cfg = OmegaConf.merge(PIPELINE, {"saliency": {"gate": True}})
    if evidence is not None:  # None: the hierarchical step's default, relevance_x_residual
        cfg.step2.evidence = evidence
    mask, saliency = RelevanceAblated(cfg).frame(flows[0])
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95
    # The residual decides once: as the relevance (the paper's evidence), or as the weight of
    # a constant relevance (the product), never squared.
    residual = residual_magnitude(flows[0])
    relevance = residual if evidence == "relevance" else np.ones_like(residual)
    expected = nims_frame(flows[0], relevance, float("nan"), cfg)
    assert np.array_equal(mask, expected.mask) and np.array_equal(saliency, expected.saliency)
    # A relevance on the background instead would have kept other regions: the residual decides.
    misled = nims_frame(flows[0], np.where(truth, 0.0, 1.0), 1.0, cfg)
    assert not (misled.mask & truth).any()


def test_last_frame_without_flow_is_empty():
    flows, _ = moving_square_flows(2)
    results = sequence_results(classifier(), flows, PIPELINE, n_frames=3)
    assert len(results) == 3 and not results[-1].mask.any() and np.isnan(results[-1].logit)
    assert empty_result((4, 5)).saliency.shape == (4, 5)


def test_oracle_keeps_the_regions_mostly_inside_the_truth():
    regions = np.zeros((4, 6), dtype=np.int32)
    regions[:, :3] = 1
    regions[:, 3:5] = 2
    regions[:, 5] = 3
    truth = np.zeros((4, 6), dtype=bool)
    truth[:, 2:5] = True  # region 1 one third inside, region 2 fully, region 3 outside
    segmentation = Segmentation(regions, np.zeros(4), np.zeros(0, int), np.zeros_like(truth))
    assert np.array_equal(oracle_mask(segmentation, truth), regions == 2)


def test_nims_on_real_davis_sequences(davis_root, tmp_path, compose_config, checkpoint):
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            f"checkpoint={checkpoint}",
            "dataset.sequences=[car-shadow]",
            "logger=none",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "step2.scale=mad",
        ],
    )
    score = evaluate.run(cfg)
    folder = tmp_path / "run1"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["J&F"] == score and 0 <= score <= 1
    assert 0 <= summary["classified_salient"] <= 1
    assert summary["oracle_J_mean"] >= 0
    assert summary["parallax_step_frames"] == 0  # DIS flow of DAVIS: affine layers everywhere
    masks = sorted((folder / "Segmentations" / "480p" / "nims" / "car-shadow").glob("*.png"))
    assert len(masks) == 40
    saliency = sorted((folder / "saliency" / "car-shadow").glob("*.png"))
    assert len(saliency) == 40
    assert json.loads((folder / "failures.json").read_text()) == {}
    # Scoring the written masks as a results folder gives the same numbers (same code path).
    rescored = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            "logger=none",
            f"predictions={folder / 'Segmentations/480p/nims'}",
            "dataset.sequences=[car-shadow]",
        ],
    )
    assert evaluate.run(rescored) == pytest.approx(score, abs=1e-9)
    # resume=true in the same folder skips the written sequence and scores it again.
    stamps = [path.stat().st_mtime_ns for path in masks]
    again = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            f"checkpoint={checkpoint}",
            "dataset.sequences=[car-shadow]",
            "logger=none",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "resume=true",
            "step2.scale=mad",
        ],
        output_dir=folder,
    )
    assert evaluate.run(again) == pytest.approx(score, abs=1e-9)
    assert [path.stat().st_mtime_ns for path in masks] == stamps


def test_a_failing_sequence_does_not_lose_the_others(
    davis_root, tmp_path, compose_config, checkpoint
):
    import shutil

    root = tmp_path / "DAVIS"
    for kind in ("JPEGImages", "Annotations"):
        for sequence in ("car-shadow", "libby"):
            shutil.copytree(davis_root / kind / "480p" / sequence, root / kind / "480p" / sequence)
    (root / "Annotations" / "480p" / "libby" / "00010.png").unlink()  # count mismatch
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={root}",
            f"checkpoint={checkpoint}",
            "dataset.sequences=[car-shadow,libby]",
            "logger=none",
            f"dataset.cache_dir={tmp_path / 'cache'}",
        ],
    )
    with pytest.raises(RuntimeError, match="libby"):
        evaluate.run(cfg)
    folder = tmp_path / "run1"
    failures = json.loads((folder / "failures.json").read_text())
    assert list(failures) == ["libby"] and "annotations" in failures["libby"]
    assert json.loads((folder / "summary.json").read_text())["J_mean"] >= 0
    assert len(list((folder / "Segmentations/480p/nims/car-shadow").glob("*.png"))) == 40


def test_checkpoint_of_the_wrong_task_is_refused(davis_root, tmp_path, compose_config):
    path = tmp_path / "crowd.pt"
    save_checkpoint(path, classifier("instance"), "crowd", {})
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            f"checkpoint={path}",
            "dataset.sequences=[car-shadow]",
            "logger=none",
        ],
    )
    with pytest.raises(ValueError, match="task 'crowd', not 'independent'"):
        evaluate.run(cfg)
    missing = compose_config(
        "evaluate",
        [f"dataset.root={davis_root}", "logger=none", f"checkpoint={tmp_path / 'none.pt'}"],
    )
    with pytest.raises(FileNotFoundError, match="none.pt"):
        evaluate.run(missing)


def test_nims_on_a_real_video(tmp_path, compose_config, checkpoint):
    from tests.conftest import shared_path

    video = shared_path("videos", "vtest.avi")
    cfg = compose_config(
        "evaluate",
        [
            "dataset=video",
            f"dataset.input={video}",
            "dataset.max_frames=6",
            "dataset.step=2",
            "logger=none",
            f"checkpoint={checkpoint}",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "figures=[[vtest,2]]",
        ],
    )
    evaluate.run(cfg)
    folder = tmp_path / "run1"
    assert (folder / "figures" / "vtest_00002.png").stat().st_size > 0
    assert len(list((folder / "masks").glob("*.png"))) == 6
    assert len(list((folder / "saliency").glob("*.png"))) == 6
    assert (folder / "overlay.mp4").stat().st_size > 0
    assert (folder / "contact_sheet.png").stat().st_size > 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["frames"] == 6
    assert summary["parallax_step_frames"] == 0  # a static camera shows no parallax
    report = (folder / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4 and "logit" in report
    assert "parallax_step" in report


def test_figures_for_chosen_davis_frames(davis_root, tmp_path, compose_config, checkpoint):
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            f"checkpoint={checkpoint}",
            "dataset.sequences=[car-shadow]",
            "logger=none",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "figures=[[car-shadow,5]]",
        ],
    )
    evaluate.run(cfg)
    assert (tmp_path / "run1" / "figures" / "car-shadow_00005.png").stat().st_size > 0


def test_dominant_motion_baseline_on_a_real_sequence(davis_root, tmp_path, compose_config):
    cfg = compose_config(
        "evaluate",
        [
            f"dataset.root={davis_root}",
            "method=dominant_motion",
            "dataset.sequences=[car-shadow]",
            "logger=none",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"checkpoint={tmp_path / 'not-needed.pt'}",
        ],
    )
    score = evaluate.run(cfg)
    folder = tmp_path / "run1"
    masks = list(
        (folder / "Segmentations" / "480p" / "dominant_motion" / "car-shadow").glob("*.png")
    )
    assert len(masks) == 40 and 0 < score <= 1
    assert "oracle_J_mean" not in json.loads((folder / "summary.json").read_text())


def test_dominant_motion_mask_finds_an_independent_mover():
    from nims.baselines import dominant_motion_mask, otsu_threshold

    flows, truth = moving_square_flows(1)
    mask = dominant_motion_mask(flows[0])
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95
    assert not dominant_motion_mask(flows[0], threshold=100.0).any()
    assert otsu_threshold(np.zeros(5)) == 0.0
    with pytest.raises(ValueError, match="method.threshold"):
        dominant_motion_mask(flows[0], threshold=-1.0)


def test_relevance_flow_correlation():
    from nims.relevance_quality import relevance_flow_correlation

    flows, _ = moving_square_flows(1)
    magnitude = np.linalg.norm(flows[0], axis=2)
    assert relevance_flow_correlation(2 * magnitude + 1, flows[0]) == pytest.approx(1.0)
    assert relevance_flow_correlation(-magnitude, flows[0]) == pytest.approx(-1.0)
    assert np.isnan(relevance_flow_correlation(np.zeros_like(magnitude), flows[0]))


@pytest.mark.parametrize("task, norm", [("independent", "batch"), ("crowd", "instance")])
def test_nims_on_the_test_videos_of_a_synthetic_set(tmp_path, compose_config, task, norm):
    path = tmp_path / f"{task}.pt"
    # The shipped classifiers' head: the crowd task also reads the flow at twice its size.
    save_checkpoint(path, classifier(norm, head="max"), task, {})
    overrides = [
        f"task={task}",
        f"dataset={task}_synth",
        "logger=none",
        "dataset.videos=4",
        "dataset.frames=3",
        "dataset.size=[64,112]",
        "dataset.flow_source=analytic",
        f"dataset.cache_dir={tmp_path / 'cache'}",
    ]
    evaluate.run(compose_config("evaluate", [*overrides, f"checkpoint={path}"]))
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["test_frames"] == 3
    if task == "crowd":  # a flattened head reads one size: refused before any frame
        flattened = tmp_path / "flattened.pt"
        save_checkpoint(flattened, classifier(norm), task, {})
        with pytest.raises(ValueError, match="reads a map of one size: use decision=default"):
            evaluate.run(compose_config("evaluate", [*overrides, f"checkpoint={flattened}"]))
    for key in (
        "frame_accuracy",
        "J_mean_detected_salient",
        "J_mean_all_salient",
        "oracle_J_mean_all_salient",
        "relevance_flow_correlation",
    ):
        assert key in summary


@pytest.mark.parametrize("method", ["nims", "dominant_motion", "epipolar_motion"])
def test_parallax_set_reports_wrongly_salient_parallax(
    tmp_path, compose_config, checkpoint, method, caplog
):
    cfg = compose_config(
        "evaluate",
        [
            "dataset=parallax_synth",
            f"method={method}",
            "dataset.videos=3",
            "dataset.frames=2",
            "dataset.size=[64,112]",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "logger=none",
            f"checkpoint={checkpoint}",
            "figures=[[video_0001,1],[video_0001,2],[video_0009,0]]",
        ],
    )
    with caplog.at_level(logging.WARNING):
        evaluate.run(cfg)
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["test_frames"] == 6  # every video of the test set
    # Figures: drawn where there is a relevance map; every entry not drawn is named.
    drawn = sorted(path.name for path in (tmp_path / "run1").glob("figures/*.png"))
    assert drawn == (["video_0001_00001.png"] if method == "nims" else [])
    warnings = caplog.text
    assert "[video_0009, 0]: no sequence video_0009 in this run" in warnings
    assert "figures=[[video_0001, 2]]: no figure, video_0001 has flow for frames 0-1" in warnings
    assert ("has no relevance map" in warnings) == (method != "nims")
    assert 0 <= summary["others_marked_salient"] <= 1
    assert 0 <= summary["J_mean_all_salient"] <= 1
    if method == "nims":
        # Exact flow of a translating camera: every frame goes to the epipolar step, also the
        # one whose median parallax stays under step2.parallax_min_residual (0.2 px) at this
        # small size (its near objects' pixels show more).
        assert summary["parallax_step_frames"] == 1.0
    report = (tmp_path / "run1" / "report.html").read_text()
    assert all(f"<td>video_000{v}</td>" in report for v in range(3))
    # NIMS draws each video's frames (2 per video here), the baseline gives its tables only.
    assert report.count("data:image/png;base64,") == (6 if method == "nims" else 0)


def test_the_held_out_parallax_set_evaluates_in_the_same_protocol(
    tmp_path, compose_config, checkpoint
):
    cfg = compose_config(
        "evaluate",
        [
            "dataset=parallax_boxes",
            "dataset.videos=3",
            "dataset.frames=2",
            "dataset.size=[90,160]",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            "logger=none",
            f"checkpoint={checkpoint}",
        ],
    )
    evaluate.run(cfg)
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["test_frames"] == 6 and summary["salient_frames"] == 6
    # Exact flow of a camera translating past boxes: every frame shows parallax.
    assert summary["parallax_step_frames"] == 1.0
    assert 0 <= summary["others_marked_salient"] <= 1
    assert 0 <= summary["frame_recall"] <= 1


def test_a_rendered_set_in_the_davis_layout_is_scored_as_real_video(
    tmp_path, compose_config, checkpoint
):
    from nims import generate
    from nims.flow import read_flow
    from nims.synthetic.davis_layout import write_davis_layout

    root = tmp_path / "boxes_davis"
    boxes = [
        "dataset=parallax_boxes",
        "dataset.videos=3",
        "dataset.frames=3",
        "dataset.size=[90,160]",
        "dataset.flow_source=analytic",
        f"dataset.cache_dir={tmp_path / 'cache'}",
    ]
    generate.run(compose_config("generate", boxes + [f"davis_layout={root}", "progress=false"]))
    sequences = ["video_0000", "video_0001", "video_0002"]
    assert (root / "ImageSets" / "2016" / "val.txt").read_text().split() == sequences
    video = next((tmp_path / "cache").glob("parallax_boxes-*/manifest.json")).parent / "video_0001"
    flows, masks = np.load(video / "flows.npy"), np.load(video / "masks.npy")
    others = np.load(video / "others.npy")
    assert len(list((root / "JPEGImages" / "480p" / "video_0001").glob("*.jpg"))) == 4
    for index in range(3):
        flow = read_flow(root / "flows" / "video_0001" / f"{index:05d}.flo")
        assert np.array_equal(flow, flows[index].astype(np.float32))
        annotation = cv2.imread(str(root / "Annotations/480p/video_0001" / f"{index:05d}.png"), 0)
        assert np.array_equal(annotation > 0, masks[index])
        other = cv2.imread(str(root / "Others/480p/video_0001" / f"{index:05d}.png"), 0)
        assert np.array_equal(other > 0, others[index])
    with pytest.raises(FileExistsError, match="not empty"):
        write_davis_layout(video.parent, root)
    # Known answer: saved masks that are the Others masks mark all of their pixels and none of
    # the mover's.
    saved = tmp_path / "saved"
    for sequence in sequences:
        (saved / sequence).mkdir(parents=True)
        for path in (root / "Others" / "480p" / sequence).glob("*.png"):
            (saved / sequence / path.name).write_bytes(path.read_bytes())
    davis = [
        "dataset=davis2016",
        f"dataset.root={root}",
        "dataset.split=val",
        "flow=precomputed",
        f"flow.root={root / 'flows'}",
        "logger=none",
        "progress=false",
    ]
    evaluate.run(compose_config("evaluate", davis + [f"predictions={saved}"]))
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["others_marked_salient"] == 1.0 and summary["J_mean"] == 0.0
    evaluate.run(compose_config("evaluate", davis + [f"checkpoint={checkpoint}"]))
    summary = json.loads((tmp_path / "run3" / "summary.json").read_text())
    assert summary["parallax_step_frames"] > 0 and 0 <= summary["others_marked_salient"] <= 1
    assert "Share of the pixels of `Others`" in (tmp_path / "run3" / "summary.md").read_text()
    (root / "Others" / "480p" / "video_0002" / "00003.png").unlink()
    with pytest.raises(RuntimeError, match="video_0002 holds 3 masks for 4 annotations"):
        evaluate.run(compose_config("evaluate", davis + [f"predictions={saved}"]))


def test_the_crowd_task_gates_masks_by_the_decision(tmp_path, compose_config):
    # A classifier that calls every frame non-salient: with the crowd task's default gate,
    # nothing is marked anywhere, and every frame without a wrong-way walker counts as empty.
    model = classifier("instance", head="max")
    with torch.no_grad():
        model.fc.bias.fill_(-1e3)
    path = tmp_path / "crowd.pt"
    save_checkpoint(path, model, "crowd", {})
    cfg = compose_config(
        "evaluate",
        [
            "task=crowd",
            "dataset=crowd_synth",
            "logger=none",
            "dataset.videos=6",
            "dataset.frames=3",
            "dataset.size=[64,112]",
            "dataset.salient_fraction=0.5",
            "dataset.flow_source=analytic",
            f"dataset.cache_dir={tmp_path / 'cache'}",
            f"checkpoint={path}",
        ],
    )
    evaluate.run(cfg)
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    rows = list(csv.DictReader((tmp_path / "run1" / "per_frame.csv").open()))
    assert sum(int(row["marked_pixels"]) for row in rows) == 0
    assert summary["J_mean_all_salient"] == 0.0
    quiet = [row for row in rows if row["label"] == "0"]
    assert summary["empty_when_not_salient"] == (1.0 if quiet else None)


def test_the_readme_python_example_runs(tmp_path):
    """The README's Python API block, run as written on a small synthetic frame pair."""
    import re

    from tests.conftest import CONFIG_DIR, REPO

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"/abs/path/to/conf"', repr(str(CONFIG_DIR)))
    rng = np.random.default_rng(0)
    frame0 = cv2.GaussianBlur(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8), (0, 0), 1.5)
    frame1 = np.roll(frame0, 2, axis=1)
    flows, _ = moving_square_flows()
    namespace = {"frame0": frame0, "frame1": frame1, "flows": flows}
    namespace["relevance"] = np.ones((120, 200), np.float32)
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["saliency"].shape == (120, 200)
    assert len(namespace["results"]) == len(flows)
