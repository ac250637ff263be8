"""Figures like the paper's Fig. 4/5 (image, flow, relevance, mask overlay, saliency), and the
relevance sheet of a trained classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from nims.atomic import replaced_atomically
from nims.flow import flow_to_color
from nims.methods import FrameResult


def overlay(image_bgr: np.ndarray, mask: np.ndarray, colour=(255, 60, 0)) -> np.ndarray:
    """RGB image with the mask tinted and outlined."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array(colour, dtype=np.float32)
    return outline(rgb.astype(np.uint8), mask, colour)


GROUND_TRUTH_COLOUR = (40, 220, 40)


def outline(rgb: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    """Draw the outer contours of ``mask`` on ``rgb`` (in place, 2 px) and return it."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(rgb, contours, -1, colour, 2)
    return rgb


def frame_figure(
    image_bgr: np.ndarray,
    flow: np.ndarray,
    result: FrameResult,
    path: Path,
    title: str = "",
    truth: Optional[np.ndarray] = None,
) -> Path:
    """Save a one-row figure of a frame's NIMS stages as PNG: image, flow, relevance (with a
    colour bar), R_sal over the image (the ground truth outlined in green when given) and the
    saliency map (with a colour bar); ``title`` names the frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    salient = overlay(image_bgr, result.segmentation.salient_mask)
    if truth is not None:
        outline(salient, truth, GROUND_TRUTH_COLOUR)
    panels = [
        ("image", cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), None),
        ("optical flow (hue: direction)", flow_to_color(flow), None),
        (f"relevance (logit {result.logit:.2f})", result.relevance, "RdBu_r"),
        ("R_sal" + (" (ground truth in green)" if truth is not None else ""), salient, None),
        ("saliency map", result.saliency, "magma"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.6))
    for axis, (name, picture, colour_map) in zip(axes, panels):
        if colour_map == "RdBu_r":
            limit = max(float(np.abs(picture).max()), 1e-12)
            shown = axis.imshow(picture, cmap=colour_map, vmin=-limit, vmax=limit)
        elif colour_map is not None:
            shown = axis.imshow(picture, cmap=colour_map, vmin=0, vmax=1)
        else:
            shown = axis.imshow(picture)
        if colour_map is not None:
            figure.colorbar(shown, ax=axis, fraction=0.035, pad=0.02)
        axis.set_title(name, fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    with replaced_atomically(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
    return path


def diverging(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] as RGB uint8: blue (-1), white (0), red (+1)."""
    v = np.clip(values, -1, 1)
    rgb = np.stack([np.minimum(1, 1 + v), 1 - np.abs(v), np.minimum(1, 1 - v)], axis=-1)
    return np.round(255 * rgb).astype(np.uint8)


def report_strip(
    image_bgr: np.ndarray,
    flow: np.ndarray,
    result: FrameResult,
    truth: np.ndarray,
    width: int = 240,
) -> np.ndarray:
    """One frame's stages side by side for the HTML report, ``(h, 5 * width, 3)`` RGB uint8:
    image, flow (Middlebury colours), relevance (blue negative, red positive, symmetric scale),
    the mask over the image with the ground truth outlined in green, saliency (magma, 0-1)."""
    limit = max(float(np.abs(result.relevance).max()), 1e-12)
    masked = outline(overlay(image_bgr, result.mask), truth, GROUND_TRUTH_COLOUR)
    saliency = cv2.applyColorMap(
        np.round(255 * np.clip(result.saliency, 0, 1)).astype(np.uint8), cv2.COLORMAP_MAGMA
    )
    panels = [
        cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB),
        flow_to_color(flow),
        diverging(result.relevance / limit),
        masked,
        cv2.cvtColor(saliency, cv2.COLOR_BGR2RGB),
    ]
    height = max(1, round(image_bgr.shape[0] * width / image_bgr.shape[1]))
    return np.hstack(
        [cv2.resize(panel, (width, height), interpolation=cv2.INTER_AREA) for panel in panels]
    )


def relevance_figure(model, dataset, attribution_cfg, count: int = 4) -> np.ndarray:
    """Colour-coded flow and relevance (the configured attribution) of the first salient frames
    of a :class:`~nims.synthetic.sets.SyntheticFrames` split, RGB uint8: a trained classifier's
    ``relevance.png``."""
    import torch

    from nims.attribution import attribute
    from nims.visualize import side_by_side

    indices = [i for i, label in enumerate(dataset.labels) if label][:count] or [0]
    flows = torch.stack([dataset[i][0] for i in indices])
    relevance = attribute(model, flows, attribution_cfg).relevance.numpy()
    rows = []
    for index, flow, relevance_map in zip(indices, flows.numpy(), relevance):
        scale = max(float(np.abs(relevance_map).max()), 1e-12)
        heat = (255 * np.clip(relevance_map / scale, 0, 1)).astype(np.uint8)
        rows.append(
            side_by_side(
                [flow_to_color(flow.transpose(1, 2, 0)), heat],
                height=96,
                titles=[f"test frame {index}: flow", "positive relevance (white: max)"],
            )
        )
    return np.vstack(rows)
