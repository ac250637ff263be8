"""The relevance diagnostic (pointing game, share inside the object), on known answers."""

import numpy as np
import pytest

from nims.relevance_quality import mean_quality, relevance_quality


def test_known_answers():
    truth = np.zeros((4, 5), dtype=bool)
    truth[1:3, 1:3] = True  # 4 of 20 pixels
    relevance = np.zeros((4, 5))
    relevance[1, 1] = 3.0  # maximum, inside
    relevance[0, 4] = 1.0  # outside
    relevance[3, 0] = -5.0  # negative: not counted
    quality = relevance_quality(relevance, truth)
    assert quality == {"pointing": 1.0, "share_inside": 0.75, "object_share": 0.2}
    relevance[0, 4] = 4.0  # the maximum moves outside
    quality = relevance_quality(relevance, truth)
    assert quality["pointing"] == 0.0 and quality["share_inside"] == pytest.approx(3 / 7)


def test_undefined_cases_are_nan():
    truth = np.zeros((3, 3), dtype=bool)
    assert all(np.isnan(v) for v in relevance_quality(np.ones((3, 3)), truth).values())
    truth[1, 1] = True
    quality = relevance_quality(-np.ones((3, 3)), truth)
    assert np.isnan(quality["pointing"]) and np.isnan(quality["share_inside"])
    assert quality["object_share"] == pytest.approx(1 / 9)
    with pytest.raises(ValueError, match="ground truth"):
        relevance_quality(np.ones((2, 2)), truth)


def test_mean_quality_leaves_out_nan():
    rows = [
        {"pointing": 1.0, "share_inside": 0.5, "object_share": 0.1},
        {"pointing": float("nan"), "share_inside": 0.3, "object_share": 0.3},
    ]
    summary = mean_quality(rows)
    assert summary == pytest.approx(
        {"relevance_pointing": 1.0, "relevance_share_inside": 0.4, "relevance_object_share": 0.2}
    )
    assert np.isnan(mean_quality([])["relevance_pointing"])
