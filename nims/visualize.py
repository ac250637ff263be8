"""Pictures for people: label maps in colour, images side by side (all RGB uint8)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def label_image(labels: np.ndarray) -> np.ndarray:
    """Colour a ``(H, W)`` label map: label 0 black, others distinct hues -> ``(H, W, 3)`` RGB."""
    count = int(labels.max(initial=0)) + 1
    # Golden-ratio hue steps keep neighbouring labels far apart on the colour circle.
    hues = (np.arange(count) * 0.618033988749895 % 1.0 * 179).astype(np.uint8)
    palette_hsv = np.stack(
        [hues, np.full(count, 200, np.uint8), np.full(count, 255, np.uint8)], axis=1
    )[None]
    palette = cv2.cvtColor(palette_hsv, cv2.COLOR_HSV2RGB)[0]
    palette[0] = 0
    return palette[labels]


def titled(image: np.ndarray, title: str, bar: int = 22) -> np.ndarray:
    """An RGB image with ``title`` written in a white bar above it (``bar`` pixels tall)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    header = np.full((bar, image.shape[1], 3), 255, dtype=np.uint8)
    scale = 0.45 * bar / 22
    cv2.putText(
        header,
        title,
        (4, int(bar * 0.72)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.vstack([header, image])


def label_legend(labels: np.ndarray, width: int, name: str = "label", most: int = 12) -> np.ndarray:
    """A strip of colour swatches, one per label present (as many of the first ``most`` as
    fit), then how many labels there are in all when some are not shown; RGB uint8."""
    present = [int(v) for v in np.unique(labels) if v > 0]
    colours = label_image(np.arange(max(present, default=0) + 1))
    strip = np.full((22, width, 3), 255, dtype=np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    total = f"({len(present)} in all)"
    reserve = cv2.getTextSize(total, font, scale, 1)[0][0] + 8
    x, shown = 4, 0
    for value in present[:most]:
        text = f"{name} {value}"
        size = cv2.getTextSize(text, font, scale, 1)[0][0]
        if x + 18 + size + (reserve if len(present) > shown + 1 else 0) > width:
            break
        strip[5:17, x : x + 12] = colours[value]
        cv2.putText(strip, text, (x + 15, 15), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        x += 24 + size
        shown += 1
    if shown < len(present):
        cv2.putText(strip, total, (x, 15), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def labels_figure(labels: np.ndarray, title: str, name: str = "label") -> np.ndarray:
    """A label map at full resolution with a title above and a colour legend below."""
    return np.vstack(
        [titled(label_image(labels), title), label_legend(labels, labels.shape[1], name)]
    )


def side_by_side(
    images: Sequence[np.ndarray], height: int = 240, titles: Sequence[str] = ()
) -> np.ndarray:
    """Resize RGB images to a common height and place them left to right, each under its
    title when ``titles`` are given."""
    resized = []
    for index, image in enumerate(images):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
        resized.append(titled(image, titles[index]) if index < len(titles) else image)
    return np.hstack(resized)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 (or gray uint8 / uint16) image as PNG, atomically."""
    from nims.benchmarks import write_png as write_stored_png

    path = Path(path)
    write_stored_png(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    return path
