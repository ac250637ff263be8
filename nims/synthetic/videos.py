"""A generator's drawing as a stored video: ray-cast placements traced into frames, exact
flows and masks (:func:`trace_video`), flows estimated from the frames when asked, and frame
labels (:func:`finish_video`). Arrays: frames ``(T+1, H, W, 3)`` uint8 BGR, flows
``(T, H, W, 2)`` float16 pixels, masks ``(T, H, W)`` bool, labels ``(T,)`` uint8."""

from __future__ import annotations

import numpy as np

from nims.synthetic.render import OTHER_OBJECT, SALIENT, cast, shade, surface_flow


def trace_video(cameras, pairs) -> dict[str, list]:
    """Ray-trace placements (a ray-caster generator's output) into drawn frames, exact flows,
    salient masks and the other objects' masks, as lists."""
    frames, flows, masks, others = [], [], [], []
    for time, (current, following) in enumerate(pairs):
        hits = cast(cameras[time], current)
        frames.append(shade(hits, current))
        flows.append(surface_flow(hits, cameras[time], cameras[time + 1], following))
        kinds = np.array([surface.kind for surface in current])[np.maximum(hits.index, 0)]
        masks.append((hits.index >= 0) & (kinds == SALIENT))
        others.append((hits.index >= 0) & (kinds == OTHER_OBJECT))
    last = pairs[-1][1]
    frames.append(shade(cast(cameras[len(pairs)], last), last))
    return {"frames": frames, "flows": flows, "masks": masks, "others": others}


def render_video(cameras, pairs, min_visible: int, estimator=None) -> dict[str, np.ndarray]:
    """Frames, flows (exact, or estimated from the frames), salient masks and labels."""
    return finish_video(trace_video(cameras, pairs), min_visible, estimator)


def traced(generate):
    """A ray-caster generator (placements) as one that draws its video, like the sprites."""

    def draw(config, seed: int, salient: bool) -> dict[str, list]:
        return trace_video(*generate(config, seed, salient))

    return draw


def finish_video(video: dict[str, list], min_visible: int, estimator=None) -> dict[str, np.ndarray]:
    """A drawn video as stored: flows estimated from the frames when an ``estimator`` is given
    (else the exact ones, float16), and a frame's label is whether ``min_visible`` salient pixels
    show."""
    frames = video["frames"]
    flows = video["flows"]
    if estimator is not None:
        flows = [estimator(frames[t], frames[t + 1]) for t in range(len(flows))]
    masks = np.stack(video["masks"])
    return {
        "frames": np.stack(frames),
        "flows": np.stack(flows).astype(np.float16),
        "masks": masks,
        "others": np.stack(video["others"]),
        "labels": (masks.sum(axis=(1, 2)) >= min_visible).astype(np.uint8),
    }
