"""Synthetic independent-motion videos with strong parallax (the paper's first task).

A camera translates and rotates (unknown to the method) through a 3-D scene: a ground plane, a
far wall, and static objects close to the camera (poles, trunks, fences) whose flow is large
by parallax only. In salient videos one or two objects move on their own. A frame is salient
when a mover is visible; its mask is the movers' visible pixels. Non-salient frames still hold
the strong parallax of the near objects, so flow magnitude alone cannot tell the classes apart.
"""

from __future__ import annotations

from dataclasses import dataclass

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
class IndependentConfig:
    """Parameters of the independent-motion generator (metres, radians, per frame)."""

    size: tuple[int, int] = (128, 224)
    frames: int = 24
    salient_fraction: float = 0.5
    movers: tuple[int, int] = (1, 2)
    poles: tuple[int, int] = (2, 5)
    pole_depth: tuple[float, float] = (2.5, 8.0)  # ahead of the camera's final position
    forward: tuple[float, float] = (0.08, 0.3)  # camera translation along its view
    sideways: tuple[float, float] = (0.05, 0.2)  # lateral translation, either direction
    yaw_rate: float = 0.01
    pitch_rate: float = 0.004
    mover_speed: tuple[float, float] = (0.15, 0.4)
    mover_depth: tuple[float, float] = (4.0, 10.0)  # ahead of the camera's final position
    min_visible: int = 15


def independent_video(config: IndependentConfig, seed: int, salient: bool):
    """Placements of one video: ``(cameras, [(surfaces at t, surfaces at t + 1)] per frame)``."""
    # One linear script on purpose: the order of the random draws below defines every cached
    # set (its key does not see code), so it is not split into helpers that could reorder it.
    rng = np.random.default_rng(seed)
    height, width = config.size
    focal = rng.uniform(0.7, 1.0) * width
    camera_height = rng.uniform(1.2, 2.0)
    yaw = rng.uniform(-0.3, 0.3)
    pitch = rng.uniform(0.0, 0.12)
    forward = rng.uniform(*config.forward)
    velocity = np.array([rng.uniform(*config.sideways) * rng.choice([-1, 1]), 0.0, forward])
    rates = (
        rng.uniform(-config.yaw_rate, config.yaw_rate),
        rng.uniform(-config.pitch_rate, config.pitch_rate),
    )
    travelled = forward * config.frames

    static = [
        Surface(
            np.array([0.0, camera_height, 0.0]),
            np.array([1.0, 0.0, 0.0]),
            np.array([0.0, 0.0, 1.0]),
            texture(rng, 64, rng.uniform(80, 150, 3)),
            "plane",
            BACKGROUND,
            4.0,
        ),
        Surface(
            np.array([0.0, 0.0, rng.uniform(25.0, 60.0)]),
            np.array([1.0, 0.0, 0.0]),
            np.array([0.0, 1.0, 0.0]),
            texture(rng, 64),
            "plane",
            BACKGROUND,
            2.0,
        ),
    ]
    for _ in range(int(rng.integers(config.poles[0], config.poles[1] + 1))):
        # Near static objects stay in view for the whole video: placed ahead of the camera's
        # final position, within the field of view.
        depth = travelled + rng.uniform(*config.pole_depth)
        lateral = rng.uniform(-0.5, 0.5) * depth * width / focal
        if rng.random() < 0.25:  # a fence: wide and low
            size_x, size_y = rng.uniform(2.0, 5.0), rng.uniform(0.8, 1.3)
        else:  # a pole or a trunk: thin and tall
            size_x, size_y = rng.uniform(0.15, 0.5), rng.uniform(3.0, 6.0)
        static.append(
            Surface(
                np.array([lateral, camera_height - size_y, depth]),
                np.array([size_x, 0.0, 0.0]),
                np.array([0.0, size_y, 0.0]),
                texture(rng, 32),
                "rect",
                OTHER_OBJECT,
                30.0,
            )
        )
    movers = []
    for _ in range(int(rng.integers(config.movers[0], config.movers[1] + 1)) if salient else 0):
        depth = travelled + rng.uniform(*config.mover_depth)
        size_x, size_y = rng.uniform(0.8, 2.2), rng.uniform(1.0, 2.0)
        lateral = rng.uniform(-0.35, 0.35) * depth * width / focal
        angle = rng.uniform(0, 2 * np.pi)
        movers.append(
            {
                "surface": Surface(
                    np.array([lateral, camera_height - size_y, depth]),
                    np.array([size_x, 0.0, 0.0]),
                    np.array([0.0, size_y, 0.0]),
                    texture(rng, 32),
                    str(rng.choice(["rect", "ellipse"])),
                    SALIENT,
                    30.0,
                ),
                "velocity": rng.uniform(*config.mover_speed)
                * np.array([np.cos(angle), 0.0, 0.5 * np.sin(angle)]),
            }
        )

    def placement(time: int):
        surfaces = list(static)
        for mover in movers:
            moved = Surface(**{**mover["surface"].__dict__})
            moved.origin = mover["surface"].origin + time * mover["velocity"]
            surfaces.append(moved)
        return surfaces

    cameras = [
        Camera(
            config.size,
            focal,
            rotation_matrix(yaw + rates[0] * time, pitch + rates[1] * time),
            velocity * time,
        )
        for time in range(config.frames + 1)
    ]
    placements = [placement(time) for time in range(config.frames + 1)]
    return cameras, [(placements[t], placements[t + 1]) for t in range(config.frames)]
