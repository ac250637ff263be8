"""Mask boundaries that follow the image: a colour model seeded by a motion mask.

Motion masks from a smooth optical flow (DIS) overshoot or fall short of the object's edge by a
few pixels, where the flow is smeared across it. :func:`refine_by_colour` re-decides only the
pixels near the mask's edge, by comparing two colour histograms: the mask's own pixels, and the
ring of pixels just outside it (GrabCut's idea, without its graph cut). Beyond the paper; picked
by the ``postprocess`` group and applied to any method's masks alike
(:func:`nims.postprocess.postprocess_results`), so that a comparison between methods measures
the methods, not the post-processing.
"""

from __future__ import annotations

import cv2
import numpy as np


def edge_distances(mask: np.ndarray):
    """Distances (pixels, L2 approximated by OpenCV's 5x5 chamfer mask, within 2%) to the other
    side of a mask's edge.

    Parameters
    ----------
    mask : array, shape (H, W), bool

    Returns
    -------
    inside, outside : arrays, shape (H, W), float32
        ``inside``: for a pixel of the mask, its distance to the nearest pixel outside (0
        outside); ``outside``: for a pixel outside, its distance to the nearest mask pixel (0
        inside).
    """
    mask8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(mask8, cv2.DIST_L2, cv2.DIST_MASK_5)
    outside = cv2.distanceTransform(1 - mask8, cv2.DIST_L2, cv2.DIST_MASK_5)
    return inside, outside


def colour_codes(image: np.ndarray, bins: int) -> np.ndarray:
    """Each pixel's colour bin, ``(H, W)`` int32 in ``[0, bins**3)``: each channel of the
    ``(H, W, 3)`` uint8 image quantised into ``bins`` equal intervals."""
    quantised = (image.astype(np.int32) * bins) >> 8
    return (quantised[..., 0] * bins + quantised[..., 1]) * bins + quantised[..., 2]


def refine_by_colour(
    image: np.ndarray,
    mask: np.ndarray,
    band: float = 15.0,
    ring: float = 30.0,
    bins: int = 16,
    smooth_radius: int = 4,
    scale: float = 0.5,
    reference_height: int = 480,
) -> np.ndarray:
    """Re-decide the pixels near a mask's edge by the colours inside and around it.

    The foreground colour histogram is taken over the mask, the background histogram over the
    pixels outside it within ``ring`` pixels (both with one count added to every bin); a
    pixel's foreground probability is the ratio of the two likelihoods, smoothed by a guided
    filter with the image as guide (so that it follows the image's edges). Pixels within
    ``band`` pixels of the mask's edge, on either side, take the side of that probability
    against 0.5; the others keep their label. An empty or full mask is returned unchanged.

    Parameters
    ----------
    image : array, shape (H, W, 3), uint8
        The frame (any 3-channel colour space; BGR as read by OpenCV).
    mask : array, shape (H, W), bool
        A motion mask of that frame.
    band : float
        Pixels of an image ``reference_height`` rows high; how far from the mask's edge labels
        may change.
    ring : float
        Pixels, likewise; the width of the background's sample outside the mask (>= ``band``).
    bins : int
        Histogram bins per colour channel (``bins**3`` in all).
    smooth_radius : int
        Radius (pixels of the reduced image, likewise) of the guided filter that smooths the
        probability.
    scale : float in (0, 1]
        Histograms, distances and the probability are computed on the image and mask reduced
        by this factor (speed); the probability is then resized back (bilinear) and compared
        with 0.5 at full resolution, where the mask outside the band keeps its pixels.
    reference_height : int
        Rows of the image the lengths above are given for: an image of ``H`` rows scales them by
        ``H / reference_height``, so that the band covers the same share of any frame (the
        lengths were chosen on DAVIS at 480 rows).

    Returns
    -------
    array, shape (H, W), bool
    """
    mask = np.asarray(mask, dtype=bool)
    if image.shape[:2] != mask.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image {image.shape} and mask {mask.shape}: the image must be (H, W, 3) with the "
            "mask's (H, W)"
        )
    if not (0 < band <= ring):
        raise ValueError(f"postprocess: need 0 < band <= ring, got band {band}, ring {ring}")
    if not 0 < scale <= 1:
        raise ValueError(f"postprocess.scale must be in (0, 1], got {scale}")
    if not reference_height > 0:
        raise ValueError(f"postprocess.reference_height must be > 0, got {reference_height}")
    if not mask.any() or mask.all():
        return mask
    height, width = mask.shape
    factor = height / float(reference_height)
    band, ring = band * factor, ring * factor
    smooth_radius = max(1, int(round(smooth_radius * factor)))
    if scale < 1:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        size = (small.shape[1], small.shape[0])
        small_mask = cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    else:
        small, small_mask = image, mask
    if not small_mask.any() or small_mask.all():
        return mask
    inside, outside = edge_distances(small_mask)
    near_edge = np.where(small_mask, inside, outside) <= band * scale
    codes = colour_codes(small, bins)
    background = (~small_mask) & (outside <= ring * scale)
    count = bins**3
    foreground_hist = np.bincount(codes[small_mask], minlength=count) + 1.0
    background_hist = np.bincount(codes[background], minlength=count) + 1.0
    foreground_hist /= foreground_hist.sum()
    background_hist /= background_hist.sum()
    probability_of = (foreground_hist / (foreground_hist + background_hist)).astype(np.float32)
    probability = cv2.ximgproc.guidedFilter(small, probability_of[codes], smooth_radius, 1e-2)
    if scale < 1:
        probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
        near_edge = (
            cv2.resize(near_edge.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
            > 0
        )
    refined = mask.copy()
    refined[near_edge] = probability[near_edge] > 0.5
    return refined
