"""``python demo.py``: flow, motion layers and candidate regions of one frame, as PNGs.

On a DAVIS-layout sequence when ``dataset.root`` holds one, otherwise on a built-in synthetic
scene (textured background moved by the camera, elliptic objects moving on their own), whose
flow is estimated by the configured backend like any video's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from nims.data import davis
from nims.data.synthetic import random_scene
from nims.flow import flow_to_color, make_flow_estimator, write_flow
from nims.report import run_dir, write_json, write_resolved_config
from nims.segmentation import connected_regions, motion_layers
from nims.visualize import label_image, side_by_side, write_png

log = logging.getLogger(__name__)


def load_frames(cfg: DictConfig):
    """The demo's frame pair (BGR uint8) and where it comes from."""
    root = Path(str(cfg.dataset.root))
    if (root / "JPEGImages").is_dir():
        frames = davis.image_paths(root, cfg.demo.sequence, cfg.dataset.resolution)
        index = int(cfg.demo.frame)
        if not 0 <= index < len(frames) - 1:
            raise ValueError(f"demo.frame must be in [0, {len(frames) - 2}] for "
                             f"{cfg.demo.sequence!r}, got {index}")
        source = f"DAVIS {cfg.demo.sequence} frame {index}"
        return davis.read_image(frames[index]), davis.read_image(frames[index + 1]), source
    scene = random_scene(n_objects=int(cfg.demo.synthetic_objects), seed=int(cfg.seed))
    return scene.frame0, scene.frame1, f"synthetic scene (seed {cfg.seed}; no DAVIS at {root})"


def run(cfg: DictConfig) -> dict:
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    frame0, frame1, source = load_frames(cfg)
    flow = make_flow_estimator(cfg.flow)(frame0, frame1)
    step2 = cfg.step2
    layers = motion_layers(flow, step2.beta, step2.scale, step2.min_outliers, step2.max_layers)
    regions = connected_regions(layers, step2.min_region, step2.connectivity)

    write_flow(folder / "flow.flo", flow)
    rgb = cv2.cvtColor(frame0, cv2.COLOR_BGR2RGB)
    pictures = {"frame.png": rgb, "flow.png": flow_to_color(flow),
                "layers.png": label_image(layers), "candidate_regions.png": label_image(regions)}
    for name, picture in pictures.items():
        write_png(folder / name, picture)
    write_png(folder / "overview.png", side_by_side(list(pictures.values())))
    layer_sizes = np.bincount(layers.ravel())[1:] / layers.size
    result = {"source": source, "flow": cfg.flow.name, "layers": int(layers.max()),
              "layer_fractions": [round(float(f), 4) for f in layer_sizes],
              "candidate_regions": int(regions.max())}
    write_json(folder / "demo.json", result)
    print(f"{source}: {result['layers']} motion layers (first covers "
          f"{100 * layer_sizes[0]:.1f}% of the frame), {result['candidate_regions']} candidate "
          f"regions\npictures in {folder}")
    return result
