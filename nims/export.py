"""``python -m nims.export <run>/best.pt <name>.pt``: ship a trained classifier.

Writes the weights, architecture, task and resolved config (no optimiser state: a few hundred
kilobytes) and, beside it, ``<name>.json`` with the run's per-epoch metrics and test metrics.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from nims.model import load_checkpoint, save_atomically
from nims.report import write_json


def export(source: Path, destination: Path) -> Path:
    checkpoint = load_checkpoint(source)
    run = Path(source).parent
    shipped = {key: checkpoint[key] for key in ("model_state", "architecture", "task", "config")}
    shipped["trained_epochs"] = checkpoint.get("epoch")
    destination.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(shipped, destination)
    record = {
        "source_run": str(run),
        "best_epoch": checkpoint.get("epoch"),
        "test_metrics": json.loads((run / "test_metrics.json").read_text())
        if (run / "test_metrics.json").is_file()
        else None,
    }
    if (run / "metrics.csv").is_file():
        with (run / "metrics.csv").open() as handle:
            record["training_log"] = list(csv.DictReader(handle))
    write_json(destination.with_suffix(".json"), record)
    return destination


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="a best.pt or last.pt written by train.py")
    parser.add_argument("destination", type=Path, help="where to write the shipped checkpoint")
    arguments = parser.parse_args(argv)
    print(f"wrote {export(arguments.source, arguments.destination)}")


if __name__ == "__main__":
    main()
