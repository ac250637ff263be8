"""Synthetic crowd videos (the paper's crowd task, after its ChAOS-rendered set).

Many small pedestrians walk on a ground plane in a common, randomly chosen direction, each with
its own jitter in speed and heading and a gait (the legs swing relative to the body); a camera
above the crowd pans, tilts, zooms and translates. In salient videos 1 to 3 *distinctive*
walkers head in a clearly different direction. People occlude each other (z-buffer). A frame is
salient when a distinctive walker is visible; its mask is their visible pixels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nims.synthetic.render import (
    BACKGROUND,
    OTHER_OBJECT,
    SALIENT,
    Camera,
    Surface,
    rotation_matrix,
    texture,
)


@dataclass(frozen=True)
class CrowdConfig:
    """Parameters of the crowd generator (lengths in metres, angles in radians, rates per second).

    Each video is filmed at a frame rate drawn from ``frame_rate``: the motions per frame are
    the rates below divided by it. ``frame_rate=[5, 5]`` gives the first crowd sets (a
    walker 7 pixels a frame at 256x448, as wide as itself, which the crowd task's DIS misses by
    3.4 pixels; by 1.0 at 10 frames/s, 0.4 at 17: ``python -m benchmarks.crowd_flow``).
    """

    size: tuple[int, int] = (128, 224)
    frames: int = 24
    people: tuple[int, int] = (30, 300)
    salient_fraction: float = 0.5
    distinctive: tuple[int, int] = (1, 3)
    frame_rate: tuple[float, float] = (8.0, 25.0)  # frames per second, one per video
    speed: float = 1.5  # metres per second
    speed_jitter: float = 0.15  # relative
    heading_jitter: float = 0.2  # radians
    min_turn: float = 1.2  # distinctive walkers head at least this far from the crowd
    gait: float = 6.5  # radians of the legs' swing phase per second (about one stride a second)
    camera_height: tuple[float, float] = (7.0, 12.0)
    camera_pitch: tuple[float, float] = (0.45, 0.75)
    pan: float = 0.02  # yaw rate range (+-)
    tilt: float = 0.01
    zoom: float = 0.02  # relative focal change per second (+-)
    travel: float = 0.25  # camera translation per second (+-, each axis)
    min_visible: int = 15  # pixels of a distinctive walker for a salient label
    # Texels per metre of the walkers' clothes, one density per video: at 360x640 and above, the
    # finer ones are patterns the crowd task's DIS loses on a moving walker (experiments/crowd.md).
    walker_texels: tuple[float, float] = (30.0, 30.0)

    # Fields added after sets were cached: at their default they draw those sets again, so a
    # set's key leaves them out (nims.synthetic.sets.set_key).
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ("walker_texels",)


def _walker_surfaces(
    position: np.ndarray,
    direction: np.ndarray,
    phase: float,
    right: np.ndarray,
    textures,
    kind: int,
    owner: int,
    texels: float,
) -> list[Surface]:
    """Body (ellipse) and two legs (rectangles) of a walker standing at ``position``, their
    textures at ``texels`` per metre."""
    hip = position + np.array([0.0, -0.85, 0.0])
    body = Surface(
        hip + np.array([0.0, -1.0, 0.0]) - 0.25 * right,
        0.5 * right,
        np.array([0.0, 1.05, 0.0]),
        textures[0],
        "ellipse",
        kind,
        texels,
        owner,
    )
    stride = 0.22 * np.sin(phase)
    legs = []
    for side, swing in ((-1, stride), (1, -stride)):
        top = hip + side * 0.09 * right + swing * direction - 0.07 * right
        legs.append(
            Surface(
                top,
                0.14 * right,
                np.array([0.0, 0.85, 0.0]),
                textures[1],
                "rect",
                kind,
                texels,
                owner,
            )
        )
    return [body] + legs


def crowd_video(config: CrowdConfig, seed: int, salient: bool):
    """Placements of one video: ``(cameras, surfaces per frame, kinds)`` for ``frames + 1`` times.

    Returns
    -------
    cameras : list of Camera
    surfaces : list of list of Surface
        Frame ``t`` placement; surface lists have the same order at every time.
    """
    # One linear script on purpose: the order of the random draws below defines every cached
    # set (its key does not see code), so it is not split into helpers that could reorder it.
    rng = np.random.default_rng(seed)
    height, width = config.size
    camera_height = rng.uniform(*config.camera_height)
    pitch = rng.uniform(*config.camera_pitch)
    yaw = rng.uniform(-np.pi, np.pi)
    focal = rng.uniform(0.8, 1.2) * width
    centre = np.array([0.0, -camera_height, 0.0])
    rates = {
        "yaw": rng.uniform(-config.pan, config.pan),
        "pitch": rng.uniform(-config.tilt, config.tilt),
        "zoom": rng.uniform(-config.zoom, config.zoom),
        "travel": rng.uniform(-config.travel, config.travel, 3) * np.array([1, 0.2, 1]),
    }
    # The crowd lives in a square of the ground around the point the camera looks at; walkers
    # leaving it re-enter on the other side, so the density stays constant.
    look = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    distance = camera_height / np.tan(pitch)
    middle = centre * np.array([1, 0, 1]) + distance * look
    half = 0.9 * distance * width / focal + 4.0
    crowd_heading = rng.uniform(-np.pi, np.pi)
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])

    count = int(rng.integers(config.people[0], config.people[1] + 1))
    n_distinctive = (
        int(rng.integers(config.distinctive[0], config.distinctive[1] + 1)) if salient else 0
    )
    walkers = []
    for number in range(count + n_distinctive):
        distinctive = number >= count
        if distinctive:
            turn = rng.uniform(config.min_turn, np.pi) * rng.choice([-1, 1])
            heading = crowd_heading + turn
            start = middle + rng.uniform(-0.4, 0.4, 3) * half * np.array([1, 0, 1])
        else:
            heading = crowd_heading + rng.normal(0, config.heading_jitter)
            start = middle + rng.uniform(-1, 1, 3) * half * np.array([1, 0, 1])
        speed = config.speed * (1 + rng.normal(0, config.speed_jitter))
        walkers.append(
            {
                "start": start,
                "direction": np.array([np.sin(heading), 0.0, np.cos(heading)]),
                "speed": speed,
                "phase": rng.uniform(0, 2 * np.pi),
                "cadence": rng.uniform(0.8, 1.2),
                "textures": (texture(rng, 32), texture(rng, 16)),
                "kind": SALIENT if distinctive else OTHER_OBJECT,
            }
        )
    ground = Surface(
        np.array([0.0, 0.0, 0.0]),
        np.array([1.0, 0.0, 0.0]),
        np.array([0.0, 0.0, 1.0]),
        texture(rng, 64, rng.uniform(90, 160, 3)),
        "plane",
        BACKGROUND,
        3.0,
    )

    # Drawn last, so that every draw above (the scene) is the same at any frame rate.
    frame_rate = rng.uniform(*config.frame_rate)
    walker_texels = rng.uniform(*config.walker_texels)

    cameras, placements = [], []
    for time in range(config.frames + 1):
        seconds = time / frame_rate
        rotation = rotation_matrix(yaw + rates["yaw"] * seconds, pitch + rates["pitch"] * seconds)
        cameras.append(
            Camera(
                config.size,
                focal * (1 + rates["zoom"] / frame_rate) ** time,
                rotation,
                centre + rates["travel"] * seconds,
            )
        )
        surfaces = [ground]
        for owner, walker in enumerate(walkers):
            position = walker["start"] + walker["speed"] * seconds * walker["direction"]
            if walker["kind"] != SALIENT:
                # Wrap around the crowd's square (distinctive walkers simply walk on).
                offset = position - middle
                offset[[0, 2]] = (offset[[0, 2]] + half) % (2 * half) - half
                position = middle + offset
            phase = walker["phase"] + walker["cadence"] * config.gait * seconds
            surfaces += _walker_surfaces(
                position,
                walker["direction"],
                phase,
                right,
                walker["textures"],
                walker["kind"],
                owner,
                walker_texels,
            )
        placements.append(surfaces)
    # Wrapping teleports a walker: keep its previous placement continuous for that step by
    # using the unwrapped position at t + 1 when the wrap happens between t and t + 1.
    return cameras, _unwrap(placements, walkers, middle, half, config)


def _unwrap(placements, walkers, middle, half, config):
    """Per frame t, the placements at t + 1 *as seen from t* (no teleport across the square)."""
    pairs = []
    for time in range(config.frames):
        current, following = placements[time], copy.copy(placements[time + 1])
        for number in range(1, len(current)):
            jump = following[number].origin - current[number].origin
            if np.abs(jump[[0, 2]]).max() > half:
                shift = np.round(jump / (2 * half)) * 2 * half * np.array([1, 0, 1])
                moved = copy.copy(following[number])
                moved.origin = following[number].origin - shift
                following[number] = moved
        pairs.append((current, following))
    return pairs
