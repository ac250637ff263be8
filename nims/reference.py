"""Slow, literal implementations used as oracles by the tests and as baselines by ``make bench``.

Nothing in the pipeline calls this module: it exists so that the fast code always has an
obviously-correct counterpart to be compared with.
"""

from __future__ import annotations

import numpy as np

from nims.motion import AffineMotion


def fit_affine_sklearn(flow: np.ndarray, mask: np.ndarray, epsilon: float = 1.35) -> AffineMotion:
    """Affine fit with scikit-learn's ``HuberRegressor``, one regression per flow component.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    mask : array, shape (H, W), bool
        Pixels to fit.
    """
    from sklearn.linear_model import HuberRegressor

    rows, cols = np.nonzero(mask)
    features = np.stack([cols, rows], axis=1).astype(np.float64)
    # Centred, unit-range features keep L-BFGS well conditioned; parameters are mapped back.
    centre = features.mean(axis=0)
    spread = max(float(np.abs(features - centre).max()), 1.0)
    normalised = (features - centre) / spread
    params = np.empty((2, 3))
    scale = np.empty(2)
    for component in range(2):
        regressor = HuberRegressor(epsilon=epsilon, alpha=0.0, max_iter=1000, tol=1e-9)
        regressor.fit(normalised, flow[rows, cols, component].astype(np.float64))
        slopes = regressor.coef_ / spread
        params[component] = [regressor.intercept_ - slopes @ centre, slopes[0], slopes[1]]
        scale[component] = regressor.scale_
    return AffineMotion(params=params, scale=scale, iterations=0)


def davis_toolkit_jaccard(annotation: np.ndarray, segmentation: np.ndarray) -> float:
    """``db_eval_iou`` of the DAVIS-2016 toolkit, line for line."""
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    if np.isclose(np.sum(annotation), 0) and np.isclose(np.sum(segmentation), 0):
        return 1.0
    return float(
        np.sum(annotation & segmentation) / np.sum(annotation | segmentation, dtype=np.float32)
    )


def davis_toolkit_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """``seg2bmap`` of the DAVIS-2016 toolkit (same width and height), line for line."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def davis_toolkit_f_measure(
    foreground_mask: np.ndarray, gt_mask: np.ndarray, bound_th: float = 0.008
) -> float:
    """``db_eval_boundary`` of the DAVIS-2016 toolkit, with scipy's dilation for skimage's."""
    from scipy.ndimage import binary_dilation

    bound_pix = (
        bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    )
    radius = int(bound_pix)
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    disk = (x**2 + y**2) <= radius**2  # skimage.morphology.disk
    fg_boundary = davis_toolkit_seg2bmap(foreground_mask)
    gt_boundary = davis_toolkit_seg2bmap(gt_mask)
    fg_dil = binary_dilation(fg_boundary, disk)
    gt_dil = binary_dilation(gt_boundary, disk)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def davis_toolkit_statistics(values: np.ndarray) -> dict:
    """Mean, recall and decay of the toolkit on a sequence (first and last frames dropped)."""
    import warnings

    x = np.asarray(values, dtype=np.float64)[1:-1]
    ids = np.round(np.linspace(1, len(x), 4 + 1) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    d_bins = [x[ids[i] : ids[i + 1] + 1] for i in range(0, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        decay = np.nanmean(d_bins[0]) - np.nanmean(d_bins[3])
    return {"mean": float(np.nanmean(x)), "recall": float(np.mean(x > 0.5)), "decay": float(decay)}


def hierarchical_step_sklearn(
    flow: np.ndarray,
    relevance: np.ndarray,
    beta: float = 1.6,
    scale: str = "std",
    min_outliers: int = 50,
    min_region: int = 50,
    lam: float = 0.15,
):
    """Hierarchical step 2, region selection and saliency map written plainly, with
    scikit-learn's ``HuberRegressor`` for every affine fit and scipy's labelling.

    Returns ``(layers, salient_mask, saliency)``; the baseline of ``make bench`` and an oracle
    for :func:`nims.step2.hierarchical.hierarchical_step` and :func:`nims.saliency.saliency_map`.
    """
    # One function on purpose: a literal reference reads top to bottom as the paper describes
    # the step, with nothing shared with the code it checks.
    from scipy import ndimage

    height, width = flow.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    layers = np.zeros((height, width), dtype=np.int32)
    remaining = np.ones((height, width), dtype=bool)
    layer = 0
    while remaining.sum() > max(min_outliers, 2):
        motion = fit_affine_sklearn(flow, remaining)
        residual = flow[remaining] - motion.at(cols[remaining], rows[remaining])
        if scale == "std":
            s_u, s_v = residual[:, 0].std(), residual[:, 1].std()
        else:
            s_u, s_v = (1.4826 * np.median(np.abs(r - np.median(r))) for r in residual.T)
        inliers = (
            0.5
            * (np.abs(residual[:, 0]) / max(s_u, 1e-3) + np.abs(residual[:, 1]) / max(s_v, 1e-3))
            < beta
        )
        if not inliers.any():
            break
        layer += 1
        layer_mask = np.zeros_like(remaining)
        layer_mask[remaining] = inliers
        layers[layer_mask] = layer
        remaining &= ~layer_mask
    layers[remaining] = layer + 1

    regions = np.zeros_like(layers)
    next_label = 1
    for value in range(1, layers.max() + 1):
        components, count = ndimage.label(layers == value, structure=np.ones((3, 3)))
        for component in range(1, count + 1):
            pixels = components == component
            if pixels.sum() >= min_region:
                regions[pixels] = next_label
                next_label += 1

    salient = np.zeros((height, width), dtype=bool)
    if next_label > 1:
        sizes = [np.sum(regions == label) for label in range(1, next_label)]
        scores = [relevance[regions == label].mean() for label in range(1, next_label)]
        threshold = scores[int(np.argmax(sizes))]
        for label, score in enumerate(scores, start=1):
            if score > threshold:
                salient |= regions == label

    saliency = np.zeros((height, width))
    if salient.any():
        background = fit_affine_sklearn(flow, ~salient)
        inpainted = background.at(cols[salient], rows[salient])
        saliency[salient] = 1 - np.exp(-lam * np.linalg.norm(inpainted - flow[salient], axis=1))
    return layers, salient, saliency
