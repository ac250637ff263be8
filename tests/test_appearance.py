"""Colour refinement of mask boundaries (nims.appearance) and the postprocess switch."""

import dataclasses

import numpy as np
import pytest

from nims.appearance import edge_distances, refine_by_colour
from nims.methods import FrameResult
from nims.postprocess import postprocess_results

SHAPE = (120, 160)


def square_image():
    """A red 40x60 square on a textured blue background (BGR), and the square's mask."""
    rng = np.random.default_rng(0)
    image = np.zeros(SHAPE + (3,), dtype=np.uint8)
    image[..., 0] = 180 + rng.integers(0, 40, SHAPE)
    image[..., 1] = 40 + rng.integers(0, 20, SHAPE)
    truth = np.zeros(SHAPE, dtype=bool)
    truth[40:80, 50:110] = True
    image[truth] = (30, 30, 200)
    return image, truth


def grown(mask, pixels):
    _, outside = edge_distances(mask)
    return mask | (outside <= pixels)


def shrunk(mask, pixels):
    inside, _ = edge_distances(mask)
    return mask & (inside > pixels)


def test_edge_distances_are_euclidean_within_two_percent():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    inside, outside = edge_distances(mask)
    assert inside[4, 4] == 1 and inside[0, 0] == 0
    np.testing.assert_allclose(outside[4, 0], 4.0, atol=1e-3)
    np.testing.assert_allclose(outside[0, 0], np.hypot(4, 4), rtol=0.02)  # chamfer 5x5


@pytest.mark.parametrize("change", [grown, shrunk])
def test_a_mask_off_the_edge_by_a_few_pixels_snaps_back(change):
    image, truth = square_image()
    mask = change(truth, 6)
    assert (mask != truth).sum() > 500
    refined = refine_by_colour(image, mask, band=10, ring=20, scale=1.0, reference_height=SHAPE[0])
    assert (refined != truth).sum() <= 4  # the guided filter may round a corner pixel


def test_only_pixels_near_the_edge_change():
    image, truth = square_image()
    far = np.zeros(SHAPE, dtype=bool)
    far[5:15, 5:15] = True
    image[far] = (30, 30, 200)  # the square's colour, far from the mask
    refined = refine_by_colour(
        image, grown(truth, 4), band=8, ring=16, scale=1.0, reference_height=SHAPE[0]
    )
    assert not refined[far].any()


@pytest.mark.parametrize("fill", [False, True])
def test_empty_and_full_masks_are_returned_unchanged(fill):
    image, _ = square_image()
    mask = np.full(SHAPE, fill)
    assert np.array_equal(refine_by_colour(image, mask), mask)


def test_the_band_scales_with_the_frames_height():
    # The same scene at half the rows of the reference: a band of 12 reference pixels is 6 here,
    # too narrow to take back a mask grown by 8; at the reference height it does.
    image, truth = square_image()
    mask = grown(truth, 8)
    options = dict(band=12, ring=24, scale=1.0, smooth_radius=2)
    at_reference = refine_by_colour(image, mask, reference_height=SHAPE[0], **options)
    halved = refine_by_colour(image, mask, reference_height=2 * SHAPE[0], **options)
    assert (at_reference != truth).sum() <= 4
    assert (halved != truth).sum() > 100


@pytest.mark.parametrize(
    "options, message",
    [
        ({"band": 20, "ring": 10}, "band <= ring"),
        ({"scale": 0}, "postprocess.scale"),
        ({"reference_height": 0}, "postprocess.reference_height"),
    ],
)
def test_bad_settings_are_named(options, message):
    image, truth = square_image()
    with pytest.raises(ValueError, match=message):
        refine_by_colour(image, truth, **options)


def result(mask):
    return FrameResult(1.0, None, None, mask.astype(np.float32), mask)


def test_postprocess_none_keeps_the_masks_and_colour_refines_them():
    image, truth = square_image()
    results = [result(grown(truth, 6)), result(np.zeros(SHAPE, dtype=bool))]
    assert postprocess_results(results, lambda index: image, {"name": "none"}) is results
    colour = {"name": "colour", "band": 10.0, "ring": 20.0, "scale": 1.0, "reference_height": 120}
    refined = postprocess_results(results, lambda index: image, colour)
    assert (refined[0].mask != truth).sum() <= 4
    assert not refined[1].mask.any()
    # Everything else is the method's: the saliency map is not redrawn.
    assert refined[0].saliency is results[0].saliency
    assert dataclasses.replace(refined[0], mask=results[0].mask) == results[0]


def test_postprocess_resizes_a_frame_of_another_size_to_the_mask():
    image, truth = square_image()
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    colour = {"name": "colour", "band": 10.0, "ring": 20.0, "scale": 1.0, "reference_height": 120}
    refined = postprocess_results([result(grown(truth, 6))], lambda index: big, colour)
    assert (refined[0].mask != truth).sum() <= 8


def test_postprocess_unknown_setting_is_named():
    image, truth = square_image()
    with pytest.raises(ValueError, match="postprocess.bandd"):
        postprocess_results([result(truth)], lambda index: image, {"name": "colour", "bandd": 3})
    with pytest.raises(KeyError, match="unknown post-processing 'crf'"):
        postprocess_results([result(truth)], lambda index: image, {"name": "crf"})
