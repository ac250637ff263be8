"""``python generate.py dataset=...``: build a synthetic task set, report it, draw it."""

from __future__ import annotations

import json
import time

from omegaconf import DictConfig

from nims.data.synthetic_sets import GENERATORS, build_set, contact_sheet, set_statistics
from nims.report import announce_run_folder, run_dir, write_json, write_resolved_config
from nims.visualize import write_png


@announce_run_folder
def run(cfg: DictConfig) -> dict:
    folder = run_dir(cfg)
    write_resolved_config(cfg, folder)
    if cfg.dataset.name not in GENERATORS:
        raise ValueError(
            f"generate.py makes the synthetic sets {sorted(GENERATORS)}, "
            f"not dataset={cfg.dataset.name}"
        )
    start = time.perf_counter()
    cached = build_set(cfg.dataset, cfg.flow)
    seconds = time.perf_counter() - start
    statistics = {"set": str(cached), **set_statistics(cached), "seconds": round(seconds, 1)}
    write_json(folder / "statistics.json", statistics)
    write_png(folder / "contact_sheet.png", contact_sheet(cached))
    print(json.dumps(statistics, indent=2))
    print(f"contact sheet: {folder / 'contact_sheet.png'}")
    return statistics
