"""Writes that an interruption cannot leave half done."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block succeeds it is renamed
    over ``path`` (one atomic step), when it fails it is removed. ``path`` then holds the old
    file or the complete new one, never part of one, even on a full disk or a killed run.

    ``suffix`` ends the temporary name, for writers that pick the format from it (``.flo``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
