"""Methods: what turns a sequence's flows into one :class:`FrameResult` per frame (``method=...``).

``method=nims`` is the paper's pipeline (:mod:`nims.methods.nims`: classifier, attribution, step
2, saliency map); ``method=dominant_motion`` and ``method=epipolar_motion`` flow-only baselines
(no classifier); ``method=relevance_ablated`` NIMS's step 2 without the relevance;
``method=unet`` the supervised U-Net of the crowd experiment. A benchmark
(:mod:`nims.benchmarks`) feeds any of them the same :class:`~nims.benchmarks.SequenceData`
(``predict(data, progress)``) and scores their results the same way. Adding a method is one
module here, registered in :data:`METHODS`, and one ``conf/method/<name>.yaml``.
"""

from nims.methods.base import (
    METHODS,
    FlowOnlyMethod,
    FrameResult,
    method_for,
    padded,
)

# The method modules register themselves.
from nims.methods import (  # noqa: E402,F401  isort: skip
    dominant_motion,
    epipolar_motion,
    nims,
    relevance_ablated,
    unet,
)

__all__ = [
    "METHODS",
    "FlowOnlyMethod",
    "FrameResult",
    "method_for",
    "padded",
]
