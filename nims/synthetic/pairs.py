"""Built-in synthetic scenes: textured frames moved by known affine motion layers.

Used by the demo when no dataset is configured, by the flow-backend benchmark (a frame pair
with exactly known flow) and by the tests (flows made of known affine layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticScene:
    """A frame pair with its exact forward flow.

    Attributes
    ----------
    frame0, frame1 : arrays, shape (H, W, 3), uint8 BGR
    flow : array, shape (H, W, 2), float32
        Exact forward flow frame0 -> frame1 in pixels.
    layers : array, shape (H, W), int32
        1 for the background, 2.. for the moving objects (in frame 0).
    motions : array, shape (L, 2, 3)
        Affine parameters of each layer (see :class:`nims.motion.AffineMotion`).
    """

    frame0: np.ndarray
    frame1: np.ndarray
    flow: np.ndarray
    layers: np.ndarray
    motions: np.ndarray

    @property
    def salient_mask(self) -> np.ndarray:
        """Pixels of the moving objects in frame 0, shape (H, W), bool."""
        return self.layers > 1


def affine_field(params: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Flow ``(H, W, 2)`` float32 of an affine model ``params`` (2, 3) on a pixel grid."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    u = params[0, 0] + params[0, 1] * cols + params[0, 2] * rows
    v = params[1, 0] + params[1, 1] * cols + params[1, 2] * rows
    return np.stack([u, v], axis=-1).astype(np.float32)


def layered_flow(layers: np.ndarray, motions: Sequence[np.ndarray]) -> np.ndarray:
    """Flow of a label map whose label ``k`` (1-based) moves with ``motions[k - 1]``."""
    flow = np.zeros(layers.shape + (2,), dtype=np.float32)
    for label, params in enumerate(motions, start=1):
        inside = layers == label
        flow[inside] = affine_field(np.asarray(params), layers.shape)[inside]
    return flow


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random multi-scale texture, ``(H, W, 3)`` uint8, rich enough for any flow method."""
    image = np.zeros(shape + (3,), dtype=np.float32)
    for sigma, weight in ((1.0, 0.5), (4.0, 1.0), (12.0, 1.5)):
        noise = rng.normal(size=shape + (3,)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        image += weight * blurred / (blurred.std() + 1e-6)
    image = (image - image.min()) / (image.max() - image.min())
    return (255 * image).astype(np.uint8)


def _warp(image: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Move an image by the affine motion ``p -> p + w(p)`` (exact inverse mapping)."""
    forward = np.array(
        [
            [1 + params[0, 1], params[0, 2], params[0, 0]],
            [params[1, 1], 1 + params[1, 2], params[1, 0]],
        ]
    )
    return cv2.warpAffine(
        image,
        forward,
        (image.shape[1], image.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def random_scene(
    shape: tuple[int, int] = (240, 427), n_objects: int = 2, seed: int = 0, max_speed: float = 4.0
) -> SyntheticScene:
    """A camera-moving background with ``n_objects`` elliptic objects moving on their own.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` in pixels.
    n_objects : int
        Independently moving objects (0 allowed).
    seed : int
        Everything is drawn from this seed.
    max_speed : float
        Typical translation speed in pixels per frame.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    scale = 1.0 / max(height, width)
    background = np.array(
        [
            [
                rng.uniform(-1, 1) * max_speed / 2,
                rng.uniform(-2, 2) * scale,
                rng.uniform(-2, 2) * scale,
            ],
            [
                rng.uniform(-1, 1) * max_speed / 2,
                rng.uniform(-2, 2) * scale,
                rng.uniform(-2, 2) * scale,
            ],
        ]
    )
    # Make the affine terms rotate/zoom about the centre instead of the top-left corner.
    background[:, 0] -= background[:, 1] * width / 2 + background[:, 2] * height / 2
    layers = np.ones(shape, dtype=np.int32)
    motions = [background]
    frame0 = texture(shape, rng)
    frame1 = _warp(frame0, background)
    for index in range(n_objects):
        mask = np.zeros(shape, dtype=np.uint8)
        centre = (int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.2, 0.8) * height))
        axes = (int(rng.uniform(0.06, 0.14) * width), int(rng.uniform(0.08, 0.2) * height))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.75, 1.5) * max_speed
        motion = background.copy()
        motion[:, 0] += speed * np.array([np.cos(angle), np.sin(angle)])
        object_texture = texture(shape, rng)
        moved_mask = _warp(mask, motion).astype(bool)
        frame0[mask.astype(bool)] = object_texture[mask.astype(bool)]
        frame1[moved_mask] = _warp(object_texture, motion)[moved_mask]
        layers[mask.astype(bool)] = index + 2
        motions.append(motion)
    flow = layered_flow(layers, motions)
    return SyntheticScene(frame0, frame1, flow, layers, np.array(motions))
