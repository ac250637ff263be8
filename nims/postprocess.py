"""Post-processing of any method's binary masks (``postprocess=...``), applied by the evaluation
loop after the method and before the masks are written and scored.

``none`` (the paper) leaves the masks as they are; ``colour`` re-decides the pixels near each
mask's edge by colour (:func:`nims.appearance.refine_by_colour`). Because every method's masks go
through the same switch, NIMS and its baselines are compared with the same post-processing.
Adding one is a function registered in :data:`POSTPROCESSORS` and one
``conf/postprocess/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np

from nims.appearance import refine_by_colour
from nims.frame_threads import map_frames
from nims.registry import Registry, check_setting_types, keyword_settings

POSTPROCESSORS: Registry = Registry("post-processing")
POSTPROCESSORS.register("colour")(refine_by_colour)


def postprocess_results(results: list, image: Callable[[int], np.ndarray], postprocess_cfg) -> list:
    """``results`` (:class:`~nims.methods.FrameResult`) with each non-empty mask post-processed
    with its frame (``image(index)``, ``(H, W, 3)`` uint8, resized to the mask's size if it
    differs); the other fields are unchanged. ``postprocess_cfg``: the ``postprocess`` node
    (``name`` and the function's keyword settings; a key the function does not take is an error
    naming it)."""
    options = dict(postprocess_cfg or {"name": "none"})
    name = str(options.pop("name"))
    if name == "none":
        return results
    function = POSTPROCESSORS.get(name)
    accepted = set(keyword_settings(function, ("image", "mask")))
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"postprocess={name} has no setting {', '.join('postprocess.' + k for k in unknown)}"
            f"; its settings are {', '.join(sorted(accepted))}"
        )
    check_setting_types(function, options, "postprocess")

    def refine(index: int):
        result = results[index]
        if not result.mask.any():
            return result
        frame = image(index)
        height, width = result.mask.shape
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        mask = function(np.ascontiguousarray(frame), result.mask, **options)
        return dataclasses.replace(result, mask=mask)

    return list(map_frames(refine, range(len(results))))
