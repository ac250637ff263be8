"""Figures like the paper's Fig. 4/5 (image, flow, relevance, mask overlay, saliency), and the
relevance sheet of a trained classifier."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nims.atomic import replaced_atomically
from nims.flow import flow_to_color
from nims.methods import FrameResult
from nims.visualize import titled

MASK_COLOUR = (255, 60, 0)
GROUND_TRUTH_COLOUR = (40, 220, 40)


def overlay(image_bgr: np.ndarray, mask: np.ndarray, colour=MASK_COLOUR) -> np.ndarray:
    """RGB image with the mask tinted and outlined."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array(colour, dtype=np.float32)
    return outline(rgb.astype(np.uint8), mask, colour)


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
    truth: np.ndarray | None = None,
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
        ("optical flow (wheel: direction, speed)", flow_to_color(flow), "flow"),
        (f"relevance (logit {result.logit:.2f})", result.relevance, "RdBu_r"),
        ("R_sal" + (" (ground truth in green)" if truth is not None else ""), salient, None),
        ("saliency map", result.saliency, "magma"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.6))
    for axis, (name, picture, colour_map) in zip(axes, panels, strict=True):
        if colour_map == "RdBu_r":
            limit = max(float(np.abs(picture).max()), 1e-12)
            shown = axis.imshow(picture, cmap=colour_map, vmin=-limit, vmax=limit)
        elif colour_map in (None, "flow"):
            shown = axis.imshow(picture)
        else:
            shown = axis.imshow(picture, cmap=colour_map, vmin=0, vmax=1)
        if colour_map == "flow":
            inset = axis.inset_axes([0.78, 0.02, 0.2, 0.2 * picture.shape[1] / picture.shape[0]])
            inset.imshow(colour_wheel(32))
            inset.axis("off")
            speed = float(np.hypot(flow[..., 0], flow[..., 1]).max())
            name = f"{name}\nrim of the wheel: {speed:.1f} px"
        elif colour_map is not None:
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


def colour_bar(
    colours: np.ndarray, width: int, low: str, high: str, middle: str = ""
) -> np.ndarray:
    """A labelled horizontal colour bar, ``(34, width, 3)`` RGB uint8: ``colours`` ``(N, 3)``
    stretched over the width, ``low`` / ``middle`` / ``high`` written under its ends and centre."""
    key = np.full((34, width, 3), 255, dtype=np.uint8)
    ramp = np.linspace(0, len(colours) - 1, width - 8).round().astype(int)
    key[3:15, 4:-4] = colours[ramp][None]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.38
    for text, anchor in ((low, 0.0), (middle, 0.5), (high, 1.0)):
        size = cv2.getTextSize(text, font, scale, 1)[0][0]
        x = int(np.clip(4 + anchor * (width - 8) - anchor * size, 2, width - size - 2))
        cv2.putText(key, text, (x, 29), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return key


def colour_wheel(radius: int) -> np.ndarray:
    """The flow colours of every direction and speed, ``(2r + 1, 2r + 1, 3)`` RGB uint8: the
    colour at offset (x, y) from the centre is that of a flow (x, y) / r (full colour at the
    rim); white outside the disc."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    wheel = flow_to_color(np.stack([x, y], axis=-1) / radius, max_magnitude=1.0)
    wheel[np.hypot(x, y) > radius] = 255
    return wheel


def flow_key(width: int, max_magnitude: float) -> np.ndarray:
    """The flow panel's key, ``(34, width, 3)`` RGB uint8: the colour wheel (hue: direction,
    saturation: speed up to ``max_magnitude`` pixels) and the speed it saturates at."""
    key = np.full((34, width, 3), 255, dtype=np.uint8)
    key[2:33, 4:35] = colour_wheel(15)
    text = f"hue: direction, white: still; full colour {max_magnitude:.1f} px"
    cv2.putText(key, text, (42, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return key


def swatch_key(width: int, entries) -> np.ndarray:
    """A key of coloured swatches, ``(34, width, 3)`` RGB uint8; ``entries``: (RGB, text)."""
    key = np.full((34, width, 3), 255, dtype=np.uint8)
    x = 4
    for colour, text in entries:
        key[11:23, x : x + 12] = colour
        cv2.putText(
            key, text, (x + 16, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
        x += 24 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)[0][0]
    return key


def saliency_colours(saliency: np.ndarray) -> np.ndarray:
    """A saliency map in [0, 1] in the magma colours, ``(H, W, 3)`` RGB uint8."""
    levels = np.round(255 * np.clip(saliency, 0, 1)).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_MAGMA)[..., ::-1].copy()


def saliency_key(width: int) -> np.ndarray:
    """The colour bar of :func:`saliency_colours`, ``(34, width, 3)`` RGB uint8."""
    ramp = saliency_colours(np.linspace(0, 1, 256)[:, None])[:, 0]
    return colour_bar(ramp, width, "0", "1", "0.5")


RELEVANCE_PERCENTILE = 99.5  # the relevance's colour scale: a few peaks would wash out the rest


def report_strip(
    image_bgr: np.ndarray,
    flow: np.ndarray,
    result: FrameResult,
    truth: np.ndarray | None,
    width: int = 240,
) -> np.ndarray:
    """One frame's stages side by side for the HTML report, RGB uint8 ``(h, 5 * width, 3)``:
    image, flow (Middlebury colours), relevance (blue negative, red positive, symmetric scale
    saturating at the 99.5th percentile of its magnitude), the mask over the image with the
    ground truth outlined in green when there is one, saliency (magma, 0-1). Each panel has its
    name above and its key below: the flow's colour wheel, the relevance's and the saliency's
    colour bars."""
    magnitude = np.abs(result.relevance)
    limit = max(float(np.percentile(magnitude, RELEVANCE_PERCENTILE)), 1e-12)
    masked = overlay(image_bgr, result.mask)
    mask_key = [(MASK_COLOUR, "mask")]
    if truth is not None:
        outline(masked, truth, GROUND_TRUTH_COLOUR)
        mask_key.append((GROUND_TRUTH_COLOUR, "ground truth"))
    speed = float(np.hypot(flow[..., 0], flow[..., 1]).max())
    panels = [
        (
            "image",
            cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB),
            np.full((34, width, 3), 255, np.uint8),
        ),
        ("optical flow", flow_to_color(flow), flow_key(width, speed)),
        (
            "relevance" + (f" (logit {result.logit:.2f})" if np.isfinite(result.logit) else ""),
            diverging(result.relevance / limit),
            colour_bar(
                diverging(np.linspace(-1, 1, 255)), width, f"-{limit:.2g}", f"+{limit:.2g}", "0"
            ),
        ),
        (
            "mask",
            masked,
            swatch_key(width, mask_key),
        ),
        ("saliency", saliency_colours(result.saliency), saliency_key(width)),
    ]
    height = max(1, round(image_bgr.shape[0] * width / image_bgr.shape[1]))
    return np.hstack(
        [
            np.vstack(
                [
                    titled(
                        cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA), name
                    ),
                    key,
                ]
            )
            for name, picture, key in panels
        ]
    )


def relevance_figure(model, dataset, attribution_cfg, count: int = 4) -> np.ndarray:
    """Colour-coded flow and relevance (the configured attribution) of the first salient frames
    of a :class:`~nims.synthetic.frames.SyntheticFrames` split, RGB uint8: a trained classifier's
    ``relevance.png``."""
    import torch

    from nims.attribution import attribute
    from nims.visualize import side_by_side

    indices = [i for i, label in enumerate(dataset.labels) if label][:count] or [0]
    flows = torch.stack([dataset[i][0] for i in indices])
    relevance = attribute(model, flows, attribution_cfg).relevance.numpy()
    rows = []
    for index, flow, relevance_map in zip(indices, flows.numpy(), relevance, strict=True):
        scale = max(float(np.abs(relevance_map).max()), 1e-12)
        heat = (255 * np.clip(relevance_map / scale, 0, 1)).astype(np.uint8)
        rows.append(
            side_by_side(
                [flow_to_color(flow.transpose(1, 2, 0)), heat],
                height=128,
                titles=[f"test frame {index}: flow", "relevance > 0 (white: max)"],
            )
        )
    return np.vstack(rows)
