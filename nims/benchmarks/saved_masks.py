"""``predictions=<dir>``: the masks a results folder already holds, scored by a benchmark's
protocol as any method's output (:mod:`nims.benchmarks.davis2016`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nims.benchmarks import SequenceData
from nims.data import davis
from nims.data.davis_results import prediction_paths
from nims.methods import FrameResult

log = logging.getLogger(__name__)


class SavedMasks:
    """The masks a results folder already holds (``predictions=<dir>``): any method's output
    scored by the same protocol. Frames the protocol does not score (first, last) may be
    missing: they count as empty."""

    title = "saved masks"
    classifies = False
    writes = False  # the folder's masks stay where they are

    def __init__(self, cfg: DictConfig):
        self.folder = Path(str(cfg.predictions))
        if not self.folder.is_dir():
            raise FileNotFoundError(f"predictions folder {self.folder} does not exist")
        self.first_index = str(cfg.predictions_first_index)
        if self.first_index not in ("0", "1"):
            raise ValueError(
                f"predictions_first_index={self.first_index}: give 0 (file 00000.png is "
                "annotation 00000, the official layout) or 1 (file 00001.png is annotation 00000)"
            )
        log.info(
            "predictions: %s/<sequence>/%05d.png is scored as annotation 00000 "
            "(predictions_first_index=%s)",
            self.folder,
            int(self.first_index),
            self.first_index,
        )

    def predict(self, data: SequenceData, progress: str | None = None) -> list[FrameResult]:
        paths = prediction_paths(self.folder, data.name, data.n_frames, self.first_index)
        return [
            FrameResult(
                float("nan"),
                None,
                None,
                None,
                np.zeros_like(truth) if path is None else davis.read_mask(path, truth.shape),
            )
            for path, truth in zip(paths, data.truths, strict=True)
        ]
