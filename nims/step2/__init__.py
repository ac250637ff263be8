"""Step 2 of NIMS: from a relevance map to candidate regions, and the choice of salient regions.

Three methods, registered in :data:`STEP2_METHODS` and picked by the ``step2`` config group:

- ``light`` (the crowd task): candidate points, grouped into connected components: the paper's,
  whose flow projects onto the relevance-weighted mean flow within ``(alpha1, alpha2)``, or ours
  (the default), moving against the crowd (:mod:`nims.step2.contrast`);
- ``hierarchical`` (the independent-motion task): affine motion layers peeled off one by one
  with a robust fit, then connected components of each layer; a frame whose flow shows
  parallax goes to the epipolar step instead (beyond the paper; ``step2.parallax_ratio``);
- ``epipolar`` (beyond the paper, for precise flow): pixels off their epipolar lines.

All return candidate regions; :func:`select_salient_regions` keeps those more relevant than
the largest candidate region (R_sal, possibly empty or several): by mean relevance alone (the
paper) or also by their share of the frame's relevance (our default).
:data:`SELECTION_RULES` lists the choices (``step2.selection``).
All maps are at the flow's resolution: flow ``(H, W, 2)`` in pixels, relevance ``(H, W)``.
"""

from nims.step2.base import (
    SELECTION_RULES,
    STEP2_METHODS,
    UNREAD_SETTINGS,
    Segmentation,
    check_relevance,
    check_step2_overrides,
    connected_regions,
    non_negative_int,
    oracle_mask,
    positive,
    segment,
    select_salient_regions,
    split_and_select,
)

# The methods register themselves in STEP2_METHODS when imported.
from nims.step2 import contrast, epipolar, hierarchical, light  # noqa: E402,F401  isort: skip

__all__ = [
    "SELECTION_RULES",
    "STEP2_METHODS",
    "UNREAD_SETTINGS",
    "Segmentation",
    "check_relevance",
    "check_step2_overrides",
    "connected_regions",
    "non_negative_int",
    "oracle_mask",
    "positive",
    "segment",
    "select_salient_regions",
    "split_and_select",
]
