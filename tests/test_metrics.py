import cv2
import numpy as np
import pytest

from nims import metrics, reference
from nims.data import davis


def toolkit_sequence(predictions, annotations):
    j = [
        reference.davis_toolkit_jaccard(a, p) for p, a in zip(predictions, annotations, strict=True)
    ]
    f = [
        reference.davis_toolkit_f_measure(p, a)
        for p, a in zip(predictions, annotations, strict=True)
    ]
    return {"J": reference.davis_toolkit_statistics(j), "F": reference.davis_toolkit_statistics(f)}


def perturbations(mask, rng):
    """Predictions of varied quality made from a real mask."""
    kernel = np.ones((7, 7), np.uint8)
    as_uint8 = mask.astype(np.uint8)
    noisy = mask ^ (rng.random(mask.shape) < 0.01)
    return {
        "exact": mask,
        "dilated": cv2.dilate(as_uint8, kernel).astype(bool),
        "eroded": cv2.erode(as_uint8, kernel).astype(bool),
        "shifted": np.roll(mask, (12, -20), axis=(0, 1)),
        "noisy": noisy,
        "empty": np.zeros_like(mask),
        "full": np.ones_like(mask),
    }


@pytest.mark.parametrize("sequence", ["blackswan", "car-shadow", "libby", "parkour"])
def test_frame_measures_equal_the_toolkit_on_real_masks(davis_root, sequence):
    rng = np.random.default_rng(0)
    paths = davis.annotation_paths(davis_root, sequence)
    for index in (0, len(paths) // 2, len(paths) - 1):
        annotation = davis.read_mask(paths[index])
        for name, prediction in perturbations(annotation, rng).items():
            assert metrics.jaccard(prediction, annotation) == pytest.approx(
                reference.davis_toolkit_jaccard(annotation, prediction), abs=1e-6
            ), name
            assert metrics.f_measure(prediction, annotation) == pytest.approx(
                reference.davis_toolkit_f_measure(prediction, annotation), abs=1e-6
            ), name


def test_sequence_statistics_equal_the_toolkit_on_real_masks(davis_root):
    paths = davis.annotation_paths(davis_root, "libby")
    annotations = [davis.read_mask(p) for p in paths]
    # Predict each frame with the mask of three frames later: realistic, varied scores.
    predictions = annotations[3:] + annotations[-3:]
    _, ours = metrics.evaluate_sequence(predictions, annotations)
    expected = toolkit_sequence(predictions, annotations)
    for measure in ("J", "F"):
        for statistic in ("mean", "recall", "decay"):
            assert ours[measure][statistic] == pytest.approx(expected[measure][statistic], abs=1e-6)


@pytest.mark.parametrize("length", [3, 4, 5, 6, 7, 9, 12, 40, 41, 50, 100, 104])
def test_statistics_equal_the_toolkit_for_every_length(length):
    values = np.random.default_rng(length).random(length)
    ours = metrics.sequence_statistics(values)
    expected = reference.davis_toolkit_statistics(values)
    for key in ("mean", "recall", "decay"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-12)


def test_decay_bins_share_their_edge_frames():
    # 9 scored frames: edges round(linspace(1, 9, 5)) - 1 = [0, 2, 4, 6, 8]; the first bin is
    # frames 0..2 and the last 6..8.
    values = np.array([1, 1, 1, 0, 0, 0, 0.5, 0.5, 0.5])
    assert metrics.decay(values) == pytest.approx(1 - 0.5)
    assert metrics.decay([0.7]) == 0.0


def test_first_and_last_frames_are_not_scored():
    stats = metrics.sequence_statistics([0.0, 1.0, 1.0, 1.0, 0.0])
    assert stats == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    with pytest.raises(ValueError, match="at least 3 frames"):
        metrics.sequence_statistics([1.0, 1.0])


def test_recall_is_strictly_above_one_half():
    assert metrics.sequence_statistics([0, 0.5, 0.51, 0])["recall"] == 0.5


def test_empty_mask_cases():
    empty = np.zeros((48, 64), dtype=bool)
    blob = empty.copy()
    blob[10:20, 10:30] = True
    assert metrics.jaccard(empty, empty) == 1.0 and metrics.f_measure(empty, empty) == 1.0
    assert metrics.jaccard(empty, blob) == 0.0 and metrics.f_measure(empty, blob) == 0.0
    assert metrics.jaccard(blob, empty) == 0.0 and metrics.f_measure(blob, empty) == 0.0
    for prediction, annotation in [(empty, empty), (empty, blob), (blob, empty)]:
        assert metrics.f_measure(prediction, annotation) == reference.davis_toolkit_f_measure(
            prediction, annotation
        )


def test_boundary_map_and_tolerance():
    mask = np.zeros((5, 6), dtype=bool)
    mask[1:4, 1:4] = True
    np.testing.assert_array_equal(metrics.seg2bmap(mask), reference.davis_toolkit_seg2bmap(mask))
    # A full mask has a boundary only where the toolkit's edge rules put one.
    full = np.ones((5, 6), dtype=bool)
    np.testing.assert_array_equal(metrics.seg2bmap(full), reference.davis_toolkit_seg2bmap(full))
    assert metrics.boundary_tolerance((480, 854)) == 8
    assert metrics.disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def test_boundary_within_tolerance_counts_as_matched():
    annotation = np.zeros((480, 854), dtype=bool)
    annotation[100:300, 200:500] = True
    near = np.roll(annotation, 8, axis=1)  # boundary 8 px away: within tolerance
    far = np.roll(annotation, 9, axis=1)  # 9 px: the vertical edges no longer match
    assert metrics.f_measure(near, annotation) == 1.0
    assert metrics.f_measure(far, annotation) < 1.0


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="differs from annotation shape"):
        metrics.jaccard(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2-D"):
        metrics.f_measure(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


def test_dataset_summary_is_the_mean_over_sequences():
    per_sequence = {
        "a": {
            "J": {"mean": 0.5, "recall": 1.0, "decay": 0.1},
            "F": {"mean": 0.7, "recall": 0.5, "decay": 0.0},
        },
        "b": {
            "J": {"mean": 0.7, "recall": 0.0, "decay": -0.1},
            "F": {"mean": 0.9, "recall": 1.0, "decay": 0.2},
        },
    }
    summary = metrics.dataset_summary(per_sequence)
    assert summary["J_mean"] == pytest.approx(0.6) and summary["F_mean"] == pytest.approx(0.8)
    assert summary["J&F"] == pytest.approx(0.7) and summary["F_decay"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no sequence"):
        metrics.dataset_summary({})


def test_the_decision_reports_recall_and_specificity_beside_accuracy():
    from nims.frame_scores import classification_metrics

    labels = np.array([1, 1, 1, 1, 0, 0])
    logits = np.array([2.0, 0.5, -1.0, -0.1, -3.0, 0.2])
    scores = classification_metrics(labels, logits)
    assert scores["accuracy"] == pytest.approx(3 / 6)
    assert scores["recall"] == pytest.approx(2 / 4)  # salient frames called salient
    assert scores["specificity"] == pytest.approx(1 / 2)  # quiet frames called quiet
    quiet = classification_metrics(np.zeros(3), np.array([-1.0, 1.0, -2.0]))
    assert np.isnan(quiet["recall"]) and quiet["specificity"] == pytest.approx(2 / 3)
