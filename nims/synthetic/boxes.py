"""A second parallax generator, written independently of the ray caster: boxes on a street.

``dataset=parallax_boxes`` checks the parallax claim on scenes that neither trained a classifier
nor chose a setting. It shares no code with :mod:`nims.synthetic.render` and
:mod:`nims.synthetic.independent`: the scene is a ground plane, a far wall and axis-aligned boxes
(near static posts, kiosks and parked cars; one person-sized walker farther away), intersected
per pixel with the slab method and kept by a depth buffer. The camera translates forward and
sideways, rotates about its three axes (yaw, pitch, roll) and may bob up and down, so no single
homography explains the static scene. Each surface has its own colour, modulated by a pattern
fixed to the surface (the walker's moves with it). Flow is exact: each visible point, moved by its
object's motion, is projected into the next camera.

World axes: ``x`` right, ``y`` down, ``z`` forward, metres; motions are per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxesConfig:
    """Parameters of the street of boxes (metres, radians, per frame)."""

    size: tuple[int, int] = (180, 320)
    frames: int = 8
    salient_fraction: float = 1.0
    posts: tuple[int, int] = (2, 5)  # near static boxes
    post_distance: tuple[float, float] = (2.0, 6.0)  # ahead of the camera's last position
    forward: tuple[float, float] = (0.05, 0.3)
    sideways: tuple[float, float] = (0.0, 0.2)  # either direction
    bob: float = 0.01  # vertical camera motion, +-
    pitch: tuple[float, float] = (-0.05, 0.1)  # the camera's first tilt, up positive
    yaw_rate: float = 0.012
    pitch_rate: float = 0.005
    roll_rate: float = 0.004
    walker_distance: tuple[float, float] = (7.0, 15.0)  # ahead of the camera's last position
    walker_scale: tuple[float, float] = (0.9, 1.1)  # times a person's size (0.5 x 1.75 x 0.35 m)
    walker_speed: tuple[float, float] = (0.04, 0.12)
    wall_distance: tuple[float, float] = (30.0, 80.0)  # beyond the camera's last position
    min_visible: int = 15


GROUND, WALL, POST, WALKER = 0, 1, 2, 3  # kinds of surface


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation: roll about z, then pitch about x, then yaw about y."""
    cy, sy, cp, sp, cr, sr = (
        np.cos(yaw),
        np.sin(yaw),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(roll),
        np.sin(roll),
    )
    about_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    about_x = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    about_z = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return about_y @ about_x @ about_z


def _box_distance(origins: np.ndarray, directions: np.ndarray, low, high) -> np.ndarray:
    """Ray parameter where rays ``origins + s * directions`` ((N, 3)) enter the axis-aligned
    box ``[low, high]``; inf for rays that miss it or meet it behind the camera."""
    with np.errstate(divide="ignore", invalid="ignore"):
        near = (np.asarray(low) - origins) / directions
        far = (np.asarray(high) - origins) / directions
    entry = np.nanmax(np.minimum(near, far), axis=1)
    leave = np.nanmin(np.maximum(near, far), axis=1)
    return np.where((entry <= leave) & (entry > 1e-6), entry, np.inf)


def _plane_distance(origins, directions, axis: int, value: float) -> np.ndarray:
    """Ray parameter where rays meet the plane ``coordinate[axis] = value``; inf if never."""
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = (value - origins[:, axis]) / directions[:, axis]
    return np.where(np.isfinite(distance) & (distance > 1e-6), distance, np.inf)


def _clear_of(point: np.ndarray, width: float, walker: np.ndarray, cameras: np.ndarray) -> bool:
    """Whether a static box of horizontal ``width`` (metres) centred at ``point`` (3,) stays
    off the line of sight to the walker (centre ``walker`` (T, 3) per frame) from the camera
    positions ``cameras`` (T, 3): their horizontal bearings differ by more than both half-widths
    and a margin of a metre, seen at the box's distance."""
    to_box = (point - cameras)[:, [0, 2]]
    to_walker = (walker - cameras)[:, [0, 2]]
    box_distance = np.linalg.norm(to_box, axis=1)
    angle = np.arctan2(to_box[:, 0], to_box[:, 1]) - np.arctan2(to_walker[:, 0], to_walker[:, 1])
    nearer = box_distance < np.linalg.norm(to_walker, axis=1)
    return bool(np.all(~nearer | (np.abs(angle) * box_distance > width / 2 + 0.5 + 1.0)))


def boxes_video(config: BoxesConfig, seed: int, salient: bool) -> dict[str, list]:
    """Frames (BGR uint8), exact flows, walker masks and the near boxes' masks of one video."""
    # One linear script on purpose, like the other generators: the order of the random draws
    # below defines every cached set (its key does not see code).
    rng = np.random.default_rng(seed)
    height, width = config.size
    focal = rng.uniform(0.6, 1.1) * width
    centre = np.array([width / 2, height / 2]) + rng.uniform(-0.03, 0.03, 2) * width
    eye_height = rng.uniform(1.3, 1.9)
    forward = rng.uniform(*config.forward)
    velocity = np.array(
        [
            rng.uniform(*config.sideways) * rng.choice([-1.0, 1.0]),
            rng.uniform(-config.bob, config.bob),
            forward,
        ]
    )
    start_angles = rng.uniform([-0.25, config.pitch[0], -0.03], [0.25, config.pitch[1], 0.03])
    rates = rng.uniform(-1, 1, 3) * [config.yaw_rate, config.pitch_rate, config.roll_rate]
    last_position = velocity * config.frames

    boxes = []  # (low, high, kind, velocity)
    heading = _rotation(start_angles[0], 0.0, 0.0)
    walker = None  # the walker's centre at each frame
    cameras_at = velocity * np.arange(config.frames + 1)[:, None]
    if salient:
        scale = rng.uniform(*config.walker_scale)
        extent = scale * np.array([0.5, 1.75, 0.35])
        distance = rng.uniform(*config.walker_distance)
        bearing = rng.uniform(-0.3, 0.3) * width / focal
        base = last_position + heading @ np.array([bearing * distance, 0.0, distance])
        angle = rng.uniform(0, 2 * np.pi)
        walk = rng.uniform(*config.walker_speed) * np.array([np.cos(angle), 0.0, np.sin(angle)])
        # Started where it will be mid-video: in view for the whole video.
        low = np.array([base[0] - extent[0] / 2, eye_height - extent[1], base[2]])
        low -= walk * config.frames / 2
        boxes.append((low, low + extent, WALKER, walk))
        walker = low + extent / 2 + walk * np.arange(config.frames + 1)[:, None]
    for _ in range(int(rng.integers(config.posts[0], config.posts[1] + 1))):
        distance = rng.uniform(*config.post_distance)
        kind = rng.choice(["post", "kiosk", "car"], p=[0.5, 0.3, 0.2])
        extent = {
            "post": (rng.uniform(0.15, 0.4), rng.uniform(2.5, 5.0), rng.uniform(0.15, 0.4)),
            "kiosk": (rng.uniform(0.8, 1.5), rng.uniform(2.0, 2.8), rng.uniform(0.8, 1.5)),
            "car": (rng.uniform(1.6, 2.0), rng.uniform(1.3, 1.6), rng.uniform(3.5, 4.5)),
        }[kind]
        # Static boxes stand off the walker's line of sight from every camera position
        # (parallax must not hide it): drawn again while one would cover it, left out when
        # none of 50 places is clear.
        for _ in range(50):
            bearing = rng.uniform(-0.45, 0.45) * width / focal
            centre_point = last_position + heading @ np.array(
                [bearing * distance, 0.0, distance + extent[2] / 2]
            )
            if walker is None or _clear_of(
                centre_point, max(extent[0], extent[2]), walker, cameras_at
            ):
                break
        else:
            continue
        base = last_position + heading @ np.array([bearing * distance, 0.0, distance])
        low = np.array([base[0] - extent[0] / 2, eye_height - extent[1], base[2]])
        boxes.append((low, low + [extent[0], extent[1], extent[2]], POST, np.zeros(3)))
    wall_depth = last_position[2] + rng.uniform(*config.wall_distance)

    colours = rng.uniform(40, 230, (len(boxes) + 2, 3))
    frequencies = rng.normal(0, 1, (len(boxes) + 2, 4, 3)) * rng.uniform(2.0, 6.0)
    phases = rng.uniform(0, 2 * np.pi, (len(boxes) + 2, 4))
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])
    rays = np.column_stack([(pixels - centre) / focal, np.ones(len(pixels))])

    def camera(time: float):
        return _rotation(*(start_angles + rates * time)), velocity * time

    frames, flows, masks, others = [], [], [], []
    for time in range(config.frames + 1):
        rotation, position = camera(time)
        directions = rays @ rotation.T
        origins = np.broadcast_to(position, directions.shape)
        distances = [
            _plane_distance(origins, directions, 1, eye_height),
            _plane_distance(origins, directions, 2, wall_depth),
        ]
        distances += [
            _box_distance(origins, directions, low + time * motion, high + time * motion)
            for low, high, _, motion in boxes
        ]
        nearest = np.argmin(np.stack(distances), axis=0)
        depth = np.min(np.stack(distances), axis=0)
        # The far wall closes the street: every ray hits something.
        points = origins + np.minimum(depth, 1e4)[:, None] * directions
        motion = np.zeros_like(points)
        local = points.copy()
        for index, (low, _, _, own) in enumerate(boxes):
            chosen = nearest == index + 2
            motion[chosen] = own
            local[chosen] -= low + time * own
        shade = _pattern_by_surface(local, nearest, frequencies, phases)
        image = colours[nearest] * (0.55 + 0.45 * shade[:, None])
        frames.append(np.clip(image, 0, 255).astype(np.uint8).reshape(height, width, 3))
        if time == config.frames:
            break
        next_rotation, next_position = camera(time + 1)
        moved = (points + motion - next_position) @ next_rotation  # in the next camera's axes
        projected = centre + focal * moved[:, :2] / moved[:, 2:3]
        flows.append((projected - pixels).reshape(height, width, 2).astype(np.float32))
        kinds = np.array([GROUND, WALL] + [kind for _, _, kind, _ in boxes])[nearest]
        masks.append((kinds == WALKER).reshape(height, width))
        others.append((kinds == POST).reshape(height, width))
    return {"frames": frames, "flows": flows, "masks": masks, "others": others}


def _pattern_by_surface(local, nearest, frequencies, phases) -> np.ndarray:
    """Each point's pattern value from its own surface's waves."""
    waves = np.sin(np.einsum("nd,nkd->nk", local, frequencies[nearest]) + phases[nearest])
    return 0.5 + 0.5 * waves.mean(axis=1)
