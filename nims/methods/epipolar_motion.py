"""``method=epipolar_motion``: the flow-only counterpart of ``step2=epipolar`` (beyond the
paper), no classifier."""

from __future__ import annotations

import numpy as np

from nims.epipolar import epipolar_distance
from nims.methods.base import METHODS, FlowOnlyMethod
from nims.step2 import connected_regions
from nims.step2.epipolar import distance_outliers


@METHODS.register("epipolar_motion")
class EpipolarMotion(FlowOnlyMethod):
    """Pixels whose flow leaves the epipolar geometry of the frame pair (no classifier; beyond
    the paper): the flow-only counterpart of ``step2=epipolar``. The saliency map is
    ``1 - exp(-lam * Sampson distance)``."""

    title = "Epipolar baseline"

    def frame(self, flow: np.ndarray):
        method, lam = self.cfg.method, float(self.cfg.saliency.lam)
        distance = epipolar_distance(flow, int(method.samples), int(method.seed))
        outliers = distance_outliers(distance, method.min_distance, method.noise_factor)
        regions = connected_regions(outliers.astype(np.int32), method.min_region)
        return regions > 0, (1 - np.exp(-lam * distance)).astype(np.float32)
