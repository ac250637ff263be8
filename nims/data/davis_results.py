"""Results folders in the official DAVIS results layout: ``<sequence>/NNNNN.png`` masks (any
nonzero pixel is foreground), numbered like the annotations from 00000, or from 00001 (then
shifted by one)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from nims.data.davis import numbered_files


def _detect_first_index(files: Dict[int, Path], n_frames: int, folder: Path) -> str:
    """``"0"`` or ``"1"``: the numbering under which every scored frame (1 .. n_frames - 2
    in annotation numbers) has a file; an error when both or neither fit."""
    scored = range(1, n_frames - 1)
    fits = [
        offset for offset in ("0", "1") if all(frame + int(offset) in files for frame in scored)
    ]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        return "0"  # the caller names the first missing frame
    # Both fit: only the unscored ends can tell (00000 or one past the last annotation).
    if 0 in files and n_frames not in files:
        return "0"
    if n_frames in files and 0 not in files:
        return "1"
    raise ValueError(
        f"predictions in {folder}: files numbered 0..{max(files)} fit both "
        f"numberings of the {n_frames} annotations; set predictions_first_index="
        "0 (file 00000 is annotation 00000) or 1"
    )


def prediction_paths(
    folder: Path, sequence: str, n_frames: int, first_index: str = "auto"
) -> List[Optional[Path]]:
    """Mask files of a results folder aligned to a sequence's ``n_frames`` annotations.

    Parameters
    ----------
    folder : Path
        Results folder holding ``<sequence>/NNNNN.png``.
    n_frames : int
        Number of annotated frames.
    first_index : {"auto", "0", "1"}
        Number of the file matching annotation 00000. ``auto``: the numbering under which
        every scored frame has a file; when both fit, 1 if there is no 00000.png but a file
        numbered ``n_frames`` (one past the last annotation), 0 in the opposite case, an
        error when both or neither end is there.

    Returns
    -------
    list of Path or None
        One entry per annotation; None only for the first or last frame, which the protocol
        does not score.

    Raises
    ------
    FileNotFoundError
        Naming the missing sequence folder or the first missing scored frame.
    """
    sequence_folder = Path(folder) / sequence
    if not sequence_folder.is_dir():
        raise FileNotFoundError(
            f"predictions for sequence {sequence!r} missing: no folder {sequence_folder}"
        )
    files = numbered_files(sequence_folder, (".png",))
    first_index = str(first_index)
    if first_index == "auto":
        first_index = _detect_first_index(files, n_frames, sequence_folder)
    if first_index not in ("0", "1"):
        raise ValueError(f"predictions_first_index must be auto, 0 or 1, got {first_index!r}")
    offset = int(first_index)
    aligned = [files.get(frame + offset) for frame in range(n_frames)]
    for frame in range(1, n_frames - 1):
        if aligned[frame] is None:
            raise FileNotFoundError(
                f"predictions for {sequence!r}: frame {frame} missing "
                f"(expected {sequence_folder / f'{frame + offset:05d}.png'})"
            )
    return aligned
