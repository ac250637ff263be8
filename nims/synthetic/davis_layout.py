"""A rendered set written in the DAVIS-2016 layout, its flows as ``.flo`` files: the form in which
scenes made by other code reach NIMS (``evaluate.py dataset=davis2016 flow=precomputed``), so
that a rendered set can be scored the same way, at its own resolution, with the classifier and
post-processing of real video.

``python generate.py dataset=<set> davis_layout=<folder>`` writes::

    folder/JPEGImages/480p/<video>/NNNNN.jpg   the frames (video_NNNN of the set)
    folder/Annotations/480p/<video>/NNNNN.png  the salient objects (255), the last frame's copied
                                               from the frame before (it has no flow)
    folder/Others/480p/<video>/NNNNN.png       the objects that must not be marked (the parallax
                                               sets' near static objects, the crowd's walkers)
    folder/ImageSets/2016/val.txt              the videos, for dataset.split=val
    folder/flows/<video>/NNNNN.flo             the set's flow of frame NNNNN -> NNNNN + 1

``evaluate.py dataset=davis2016`` reports the share of the ``Others`` pixels marked salient
(``others_marked_salient``) when that folder is there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from nims.flow import write_flow


def write_davis_layout(set_folder: Path, root: Path) -> list[str]:
    """Write the rendered set in ``set_folder`` (:func:`nims.synthetic.sets.build_set`) in the
    DAVIS layout under ``root``; return the sequence names.

    ``root`` must not exist or be empty: a set is never mixed with other files. The layout is
    written beside it and renamed into place when whole, so an interrupted export leaves
    nothing under ``root``.
    """
    set_folder, root = Path(set_folder), Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"davis_layout={root} is not empty: give a new folder (the layout is written whole)"
        )
    manifest = json.loads((set_folder / "manifest.json").read_text())
    staging = root.parent / f".{root.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    names = [f"video_{video:04d}" for video in range(int(manifest["videos"]))]
    try:
        for name in names:
            _write_video(set_folder / name, staging, name)
        sets = staging / "ImageSets" / "2016"
        sets.mkdir(parents=True)
        (sets / "val.txt").write_text("\n".join(names) + "\n")
        if root.exists():
            root.rmdir()
        root.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names


def _write_video(video: Path, root: Path, name: str) -> None:
    frames = np.load(video / "frames.npy", mmap_mode="r")  # BGR, (N + 1, H, W, 3)
    flows = np.load(video / "flows.npy", mmap_mode="r")  # (N, H, W, 2)
    masks = np.load(video / "masks.npy", mmap_mode="r")
    others_path = video / "others.npy"
    others = np.load(others_path, mmap_mode="r") if others_path.is_file() else None
    folders = {kind: root / kind / "480p" / name for kind in ("JPEGImages", "Annotations")}
    if others is not None:
        folders["Others"] = root / "Others" / "480p" / name
    for folder in folders.values():
        folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        pair = min(index, len(masks) - 1)
        cv2.imwrite(
            str(folders["JPEGImages"] / f"{index:05d}.jpg"),
            np.asarray(frame),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
        cv2.imwrite(str(folders["Annotations"] / f"{index:05d}.png"), _png(masks[pair]))
        if others is not None:
            cv2.imwrite(str(folders["Others"] / f"{index:05d}.png"), _png(others[pair]))
    for index, flow in enumerate(flows):
        write_flow(root / "flows" / name / f"{index:05d}.flo", np.asarray(flow, np.float32))


def _png(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask, dtype=np.uint8) * 255
