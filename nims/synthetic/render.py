"""A small ray caster for synthetic videos with exact optical flow.

A scene is a set of textured planar *surfaces* (an unbounded ground plane or wall, rectangles,
ellipses) seen by a pinhole camera. Every surface has its own placement at each time, so static
scenery (flow by parallax only), moving objects and articulated parts (a walker's legs) are all
the same thing. For each pixel the renderer finds the nearest surface hit by its ray (z-buffer),
the hit's surface coordinates ``(alpha, beta)`` and the texture colour; the forward flow is the
projection, with the next camera, of the same surface point at the next placement, minus the
pixel. Frames and flow are therefore consistent by construction.

Coordinates: world and camera frames are right-handed with x right, y *down*, z forward; image
pixels ``(x, y)`` = (column, row). A camera holds its world-to-camera rotation, centre and focal
length in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

BACKGROUND, OTHER_OBJECT, SALIENT = 0, 1, 2  # surface kinds: scenery, other objects, salient


@dataclass
class Camera:
    """Pinhole camera: ``x_cam = rotation @ (X - centre)``; pixels ``f * x/z + c``."""

    size: tuple[int, int]
    focal: float
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    centre: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def rays(self) -> np.ndarray:
        """World direction of every pixel's ray (camera z component 1), ``(H, W, 3)``."""
        height, width = self.size
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
        camera_rays = np.stack(
            [
                (cols - (width - 1) / 2) / self.focal,
                (rows - (height - 1) / 2) / self.focal,
                np.ones_like(cols),
            ],
            axis=-1,
        )
        return camera_rays @ self.rotation  # row vectors: d_world = R^T d_cam

    def project(self, points: np.ndarray):
        """Pixel coordinates ``(..., 2)`` and camera depth ``(...)`` of world points."""
        camera_points = (points - self.centre) @ self.rotation.T
        depth = camera_points[..., 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        height, width = self.size
        pixels = np.stack(
            [
                self.focal * camera_points[..., 0] / safe + (width - 1) / 2,
                self.focal * camera_points[..., 1] / safe + (height - 1) / 2,
            ],
            axis=-1,
        )
        return pixels, depth


@dataclass
class Surface:
    """A textured planar patch ``origin + alpha * axis_u + beta * axis_v``.

    ``alpha, beta`` run over [0, 1] for bounded shapes (``rect``, ``ellipse`` inscribed in the
    rectangle) and over all reals for ``plane``. ``texture`` is ``(h, w, 3)`` uint8 BGR, tiled
    with ``texture_scale`` texels per world unit.
    """

    origin: np.ndarray
    axis_u: np.ndarray
    axis_v: np.ndarray
    texture: np.ndarray
    shape: str = "rect"
    kind: int = BACKGROUND
    texture_scale: float = 40.0
    owner: int = -1  # objects made of several surfaces (a walker) share an owner id


def _corners(surface: Surface) -> np.ndarray:
    return np.array(
        [
            surface.origin,
            surface.origin + surface.axis_u,
            surface.origin + surface.axis_v,
            surface.origin + surface.axis_u + surface.axis_v,
        ]
    )


@dataclass
class Hits:
    """Per pixel: the visible surface's index (-1: none), its ``alpha, beta`` and depth."""

    index: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    depth: np.ndarray


def cast(camera: Camera, surfaces: Sequence[Surface]) -> Hits:
    """Nearest surface along every pixel's ray (bounded surfaces only over their bounding box)."""
    height, width = camera.size
    rays = camera.rays()
    index = np.full((height, width), -1, dtype=np.int32)
    depth = np.full((height, width), np.inf)
    alpha = np.zeros((height, width))
    beta = np.zeros((height, width))
    for number, surface in enumerate(surfaces):
        window = (slice(0, height), slice(0, width))
        if surface.shape != "plane":
            pixels, corner_depth = camera.project(_corners(surface))
            if (corner_depth <= 0).all():
                continue
            if (corner_depth > 0).all():
                low = np.floor(pixels.min(axis=0)).astype(int) - 1
                high = np.ceil(pixels.max(axis=0)).astype(int) + 2
                x0, y0 = max(low[0], 0), max(low[1], 0)
                x1, y1 = min(high[0], width), min(high[1], height)
                if x0 >= x1 or y0 >= y1:
                    continue
                window = (slice(y0, y1), slice(x0, x1))
        d = rays[window]
        normal = np.cross(surface.axis_u, surface.axis_v)
        denominator = d @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            s = ((surface.origin - camera.centre) @ normal) / denominator
        point = camera.centre + s[..., None] * d
        offset = point - surface.origin
        a = offset @ surface.axis_u / (surface.axis_u @ surface.axis_u)
        b = offset @ surface.axis_v / (surface.axis_v @ surface.axis_v)
        visible = np.isfinite(s) & (s > 1e-6) & (s < depth[window])
        if surface.shape == "rect":
            visible &= (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        elif surface.shape == "ellipse":
            visible &= (a - 0.5) ** 2 + (b - 0.5) ** 2 <= 0.25
        elif surface.shape != "plane":
            raise ValueError(f"unknown surface shape {surface.shape!r}")
        for target, value in ((index, number), (depth, s), (alpha, a), (beta, b)):
            region = target[window]
            region[visible] = value if np.isscalar(value) else value[visible]
    return Hits(index, alpha, beta, depth)


REMAP_COLUMNS = 1024


def shade(
    hits: Hits, surfaces: Sequence[Surface], sky: tuple[int, int, int] = (200, 170, 140)
) -> np.ndarray:
    """Colour every pixel from its surface's texture (bilinear, tiled); ``(H, W, 3)`` uint8."""
    image = np.empty(hits.index.shape + (3,), dtype=np.uint8)
    image[:] = sky
    for number in np.unique(hits.index):
        if number < 0:
            continue
        surface = surfaces[number]
        mask = hits.index == number
        texture_height, texture_width = surface.texture.shape[:2]
        u = hits.alpha[mask] * np.linalg.norm(surface.axis_u) * surface.texture_scale
        v = hits.beta[mask] * np.linalg.norm(surface.axis_v) * surface.texture_scale
        # cv2.remap takes maps under 32767 columns: the points are laid out in rows of 1024.
        count = u.size
        rows = -(-count // REMAP_COLUMNS)
        map_x = np.zeros(rows * REMAP_COLUMNS, dtype=np.float32)
        map_y = np.zeros(rows * REMAP_COLUMNS, dtype=np.float32)
        map_x[:count] = np.mod(u, texture_width)
        map_y[:count] = np.mod(v, texture_height)
        colours = cv2.remap(
            surface.texture,
            map_x.reshape(rows, REMAP_COLUMNS),
            map_y.reshape(rows, REMAP_COLUMNS),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )
        image[mask] = colours.reshape(-1, 3)[:count]
    return image


def surface_flow(
    hits: Hits, camera: Camera, next_camera: Camera, next_surfaces: Sequence[Surface]
) -> np.ndarray:
    """Exact forward flow ``(H, W, 2)`` float32 of the visible surface points (0 on the sky)."""
    height, width = hits.index.shape
    flow = np.zeros((height, width, 2), dtype=np.float32)
    visible = hits.index >= 0
    if not visible.any():
        return flow
    origins = np.array([s.origin for s in next_surfaces])
    axes_u = np.array([s.axis_u for s in next_surfaces])
    axes_v = np.array([s.axis_v for s in next_surfaces])
    index = hits.index[visible]
    points = (
        origins[index]
        + hits.alpha[visible, None] * axes_u[index]
        + hits.beta[visible, None] * axes_v[index]
    )
    pixels, _ = next_camera.project(points)
    rows, cols = np.nonzero(visible)
    flow[visible, 0] = pixels[:, 0] - cols
    flow[visible, 1] = pixels[:, 1] - rows
    return flow


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """World-to-camera rotation for a camera turned by ``yaw`` (right), ``pitch`` (down) and
    ``roll``, radians."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    turn = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # about y (down): yaw
    tilt = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # about x: pitch (down > 0)
    spin = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return (turn @ tilt @ spin).T


def texture(
    rng: np.random.Generator, size: int = 64, tint: Sequence[float] | None = None
) -> np.ndarray:
    """A tileable random texture, ``(size, size, 3)`` uint8: blurred noise with a colour tint."""
    noise = rng.normal(size=(size, size, 3)).astype(np.float32)
    # Blurring a wrap-padded copy keeps the texture tileable.
    margin = 8
    padded = np.pad(noise, ((margin, margin), (margin, margin), (0, 0)), mode="wrap")
    blurred = cv2.GaussianBlur(padded, (0, 0), 1.5)[margin:-margin, margin:-margin]
    blurred = (blurred - blurred.mean()) / (blurred.std() + 1e-6)
    tint = np.asarray(tint if tint is not None else rng.uniform(60, 200, 3), dtype=np.float32)
    return np.clip(tint + 45 * blurred, 0, 255).astype(np.uint8)
