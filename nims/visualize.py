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
    palette_hsv = np.stack([hues, np.full(count, 200, np.uint8), np.full(count, 255, np.uint8)],
                           axis=1)[None]
    palette = cv2.cvtColor(palette_hsv, cv2.COLOR_HSV2RGB)[0]
    palette[0] = 0
    return palette[labels]


def side_by_side(images: Sequence[np.ndarray], height: int = 240) -> np.ndarray:
    """Resize RGB images to a common height and place them left to right."""
    resized = []
    for image in images:
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        resized.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST))
    return np.hstack(resized)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 (or gray uint8 / uint16) image as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path
