"""A second crowd generator, written independently of the ray caster: flat 2D sprites.

``dataset=crowd_sprites`` checks that the crowd model learnt "someone moves against the crowd"
rather than the look of :mod:`nims.synthetic.crowd`'s renderings: walkers are textured ellipses of
random size and aspect without a gait, seen straight from above the image plane; the camera
pans, zooms and rolls (a similarity per frame instead of a 3D perspective camera); walkers
occlude each other by their image row (lower is nearer). In salient videos 1 to 3 walkers head at
least ``min_turn`` away from the crowd's common direction. Lengths are pixels of frame 0,
motions are per frame; the flow is exact (the composition of the camera's maps and each
walker's translation).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nims.synthetic.render import texture


@dataclass(frozen=True)
class SpritesConfig:
    """Parameters of the sprite crowd (pixels of frame 0, radians, per frame)."""

    size: tuple[int, int] = (128, 224)
    frames: int = 2
    people: tuple[int, int] = (30, 200)
    salient_fraction: float = 0.5
    distinctive: tuple[int, int] = (1, 3)
    height: tuple[float, float] = (8.0, 20.0)  # walker height, pixels
    aspect: tuple[float, float] = (0.3, 0.6)  # width / height
    speed: tuple[float, float] = (1.0, 3.5)  # pixels per frame
    heading_jitter: float = 0.25
    min_turn: float = 1.2
    pan: float = 2.0  # pixels per frame (+-, each axis)
    zoom: float = 0.01  # relative scale change per frame (+-)
    roll: float = 0.005  # radians per frame (+-)
    min_visible: int = 15


def _camera(config: SpritesConfig, rates: dict[str, np.ndarray], time: int) -> np.ndarray:
    """The 2x3 map from frame-0 pixels ("world") to frame ``time`` pixels."""
    height, width = config.size
    centre = np.array([width / 2, height / 2])
    scale = (1 + rates["zoom"]) ** time
    angle = rates["roll"] * time
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = centre + rates["pan"] * time - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


def _apply(camera: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``camera`` (2, 3) applied to points ``(..., 2)``."""
    return points @ camera[:, :2].T + camera[:, 2]


def _invert(camera: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(camera[:, :2])
    return np.hstack([inverse, (-inverse @ camera[:, 2])[:, None]])


def _sample(tile: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of a tileable texture at points ``(..., 2)`` (x, y), wrapping around."""
    maps = points.astype(np.float32)
    return cv2.remap(tile, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def sprite_crowd_video(config: SpritesConfig, seed: int, salient: bool) -> dict[str, np.ndarray]:
    """One video: ``frames`` (T+1, H, W, 3) uint8 BGR, exact ``flows`` (T, H, W, 2) float32
    pixels, ``masks`` and ``others`` (T, H, W) bool (distinctive and ordinary walkers' visible
    pixels)."""
    # One linear script on purpose, like the other generators: the order of the random draws
    # below defines every cached set (its key does not see code).
    rng = np.random.default_rng(seed)
    height, width = config.size
    rates = {
        "pan": rng.uniform(-config.pan, config.pan, 2),
        "zoom": rng.uniform(-config.zoom, config.zoom),
        "roll": rng.uniform(-config.roll, config.roll),
    }
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    n_distinctive = int(rng.integers(config.distinctive[0], config.distinctive[1] + 1))
    n_distinctive = n_distinctive if salient else 0
    heading = rng.uniform(-np.pi, np.pi)
    total = count + n_distinctive
    turns = np.zeros(total)
    turns[:count] = rng.normal(0, config.heading_jitter, count)
    turns[count:] = rng.uniform(config.min_turn, np.pi, n_distinctive) * rng.choice(
        [-1, 1], n_distinctive
    )
    speeds = rng.uniform(*config.speed, total)
    velocity = speeds[:, None] * np.stack([np.cos(heading + turns), np.sin(heading + turns)], 1)
    # Ordinary walkers fill a margin around the view; distinctive ones start inside it.
    margin = 0.3 * np.array([width, height])
    start = rng.uniform(-margin, np.array([width, height]) + margin, (total, 2))
    start[count:] = rng.uniform(0.2, 0.8, (n_distinctive, 2)) * np.array([width, height])
    tall = rng.uniform(*config.height, total)
    axes = np.stack([tall * rng.uniform(*config.aspect, total) / 2, tall / 2], 1)
    textures = [texture(rng, 16) for _ in range(total)]
    ground = texture(rng, 64, rng.uniform(90, 170, 3))
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([cols, rows], -1)

    frames, flows, masks, others = [], [], [], []
    for time in range(config.frames + 1):
        camera = _camera(config, rates, time)
        world = _apply(_invert(camera), pixels)
        image = _sample(ground, world)
        owner = np.full((height, width), -1)
        centres = start + time * velocity
        for walker in np.argsort(centres[:, 1]):  # lower in the image: nearer, drawn last
            local = (world - centres[walker]) / axes[walker]
            inside = (local**2).sum(-1) <= 1
            if inside.any():
                offset = world[inside] - centres[walker]
                image[inside] = _sample(textures[walker], offset[None])[0]
                owner[inside] = walker
        frames.append(image)
        if time == config.frames:
            break
        moved = world + np.where(owner[..., None] >= 0, velocity[np.maximum(owner, 0)], 0.0)
        flows.append((_apply(_camera(config, rates, time + 1), moved) - pixels).astype(np.float32))
        masks.append(owner >= count)
        others.append((owner >= 0) & (owner < count))
    frames = [cv2.GaussianBlur(frame, (0, 0), 0.6) for frame in frames]  # a camera's blur
    return {
        "frames": np.stack(frames),
        "flows": np.stack(flows),
        "masks": np.stack(masks),
        "others": np.stack(others),
    }
