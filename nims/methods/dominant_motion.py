"""``method=dominant_motion``: the flow-only baseline, no classifier."""

from __future__ import annotations

import numpy as np

from nims.baselines import dominant_motion_mask, residual_magnitude
from nims.methods.base import METHODS, FlowOnlyMethod


@METHODS.register("dominant_motion")
class DominantMotion(FlowOnlyMethod):
    """Pixels moving unlike the frame's dominant affine motion (no classifier); the saliency
    map is ``1 - exp(-lam * residual)``."""

    title = "Dominant-motion baseline"

    def frame(self, flow: np.ndarray):
        method, lam = self.cfg.method, float(self.cfg.saliency.lam)
        mask = dominant_motion_mask(flow, method.threshold, int(method.min_region))
        return mask, 1 - np.exp(-lam * residual_magnitude(flow))
