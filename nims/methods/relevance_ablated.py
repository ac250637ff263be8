"""``method=relevance_ablated``: NIMS without its interpretation, no classifier.

The same step 2 and saliency map as NIMS (:func:`nims.methods.nims.nims_frame`, the ``step2``,
``saliency`` and ``postprocess`` groups alike), with the relevance map replaced by each pixel's
residual to the frame's dominant motion, ``|w - w_affine|`` (:func:`nims.baselines.
residual_magnitude`): with the hierarchical step the candidate regions are NIMS's own, and the
regions are kept by the flow's evidence instead of the classifier's. NIMS's margin over it is
what the interpretation adds to step 2. When the hierarchical step already weighs the relevance
by that residual (``step2.evidence=relevance_x_residual``), the relevance is replaced by a
constant instead, so that the regions are again kept by the residual alone.
"""

from __future__ import annotations

import numpy as np

from nims.baselines import residual_magnitude
from nims.methods.base import METHODS, FlowOnlyMethod
from nims.methods.nims import nims_frame
from nims.step2.hierarchical import weighs_by_residual


@METHODS.register("relevance_ablated")
class RelevanceAblated(FlowOnlyMethod):
    """NIMS's step 2 and saliency map, relevance replaced by the residual to the dominant motion."""

    title = "NIMS's regions without relevance"

    def frame(self, flow: np.ndarray):
        if weighs_by_residual(self.cfg.step2):
            evidence = np.ones(flow.shape[:2], dtype=np.float32)
        else:
            evidence = residual_magnitude(flow)
        result = nims_frame(flow, evidence, float("nan"), self.cfg)
        return result.mask, result.saliency
