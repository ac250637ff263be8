"""Pictures for people: label maps in colour, images side by side (all RGB uint8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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


def label_legend(labels: np.ndarray, width: int, name: str = "label", most: int = 40) -> np.ndarray:
    """Colour swatches naming the labels present (the first ``most``), wrapped over as many
    22-pixel lines as they need, then how many labels there are in all when some are not
    shown; RGB uint8 ``(22 * lines, width, 3)``."""
    present = [int(v) for v in np.unique(labels) if v > 0]
    colours = label_image(np.arange(max(present, default=0) + 1))
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    entries = [(colours[value], f"{name} {value}") for value in present[:most]]
    if len(present) > most:
        entries.append((None, f"({len(present)} in all)"))
    lines: list = [[]]
    x = 4
    for colour, text in entries:
        step = 24 + cv2.getTextSize(text, font, scale, 1)[0][0]
        if x + step > width and lines[-1]:
            lines.append([])
            x = 4
        lines[-1].append((x, colour, text))
        x += step
    strip = np.full((22 * len(lines), width, 3), 255, dtype=np.uint8)
    for row, line in enumerate(lines):
        top = 22 * row
        for x, colour, text in line:
            if colour is not None:
                strip[top + 5 : top + 17, x : x + 12] = colour
                x += 15
            cv2.putText(strip, text, (x, top + 15), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def labels_figure(
    labels: np.ndarray, title: str, name: str = "label", min_width: int = 640
) -> np.ndarray:
    """A label map with a title above and a colour legend below, enlarged (nearest neighbour)
    to at least ``min_width`` pixels so that the title and the legend are readable."""
    factor = max(1, int(np.ceil(min_width / labels.shape[1])))
    shown = np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)
    return np.vstack(
        [titled(label_image(shown), title), label_legend(labels, shown.shape[1], name)]
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
