"""The frames of one sequence spread over threads: step 2, the saliency map and the
post-processing of each frame depend on that frame alone, and part of their work (numpy's
passes over whole arrays, OpenCV) releases the GIL, so threads use the cores a sequence is given
without copying its flows into other processes; most of step 2 holds the GIL, so two threads
gain 5-10% on two cores (``experiments/table1_davis.md``). The count follows PyTorch's
(``torch.get_num_threads()``, which ``evaluate.py``'s ``threads`` sets, 1 per sequence when
sequences run in parallel)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def frame_workers() -> int:
    """Threads for a sequence's per-frame work: as many as PyTorch is allowed."""
    return max(1, torch.get_num_threads())


def map_frames(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int | None = None
) -> Iterator[Result]:
    """``map(function, items)`` in order, on ``workers`` threads (default :func:`frame_workers`;
    1: in this thread). An exception raised for an item is raised here, for that item."""
    workers = frame_workers() if workers is None else workers
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="nims-frame") as pool:
        yield from pool.map(function, items)
