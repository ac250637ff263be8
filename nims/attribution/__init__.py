"""Step 1 of NIMS: which input pixels made the classifier say "salient" (``attribution=...``).

:func:`relevance_maps` batches flow fields through the classifier and the attribution the
``attribution`` config node names, and returns per-pixel maps at the flows' resolution.
Attributions are registered in :data:`ATTRIBUTIONS`: ``lrp`` (:mod:`nims.attribution.lrp`, the
paper's step 1, with the rules of :mod:`nims.attribution.rules` that ``lrp_rules`` picks) and
the gradient methods of :mod:`nims.attribution.gradients` (``gradient_x_input``,
``integrated_gradients``). An attribution takes ``(model, flow batch (B, 2, h, w), **options)``
and returns an :class:`Attribution`. The frame's decision (the ``decision`` group, beyond the
paper) is the mean logit of the flow and its mirror images (``flips``, :func:`attribute`), then
of the frames around it (``window``, :func:`decision_logits`).
"""

from nims.attribution.base import (
    ATTRIBUTIONS,
    FLIPS,
    Attribution,
    at_flow_resolution,
    attribute,
    attribute_flows,
    decision_logits,
    mirrored,
    relevance,
    relevance_maps,
    to_model_input,
)

# The attribution modules register themselves.
from nims.attribution import gradients, lrp  # noqa: E402,F401  isort: skip

__all__ = [
    "ATTRIBUTIONS",
    "FLIPS",
    "Attribution",
    "at_flow_resolution",
    "attribute",
    "attribute_flows",
    "decision_logits",
    "mirrored",
    "relevance",
    "relevance_maps",
    "to_model_input",
]
