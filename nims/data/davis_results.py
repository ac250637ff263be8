"""Results folders in the official DAVIS results layout: ``<sequence>/NNNNN.png`` masks (any
nonzero colour pixel is foreground, alpha is ignored), numbered like the annotations: file
``NNNNN.png`` is annotation ``NNNNN``. Results numbered from 00001 for annotation 00000 are read
with ``first_index=1``; the numbering is never guessed."""

from __future__ import annotations

from pathlib import Path

from nims.data.davis import numbered_files


def prediction_paths(
    folder: Path, sequence: str, n_frames: int, first_index=0
) -> list[Path | None]:
    """Mask files of a results folder aligned to a sequence's ``n_frames`` annotations.

    Parameters
    ----------
    folder : Path
        Results folder holding ``<sequence>/NNNNN.png``.
    n_frames : int
        Number of annotated frames.
    first_index : {0, 1}
        Number of the file matching annotation 00000 (0: the official layout).

    Returns
    -------
    list of Path or None
        One entry per annotation; None only for the first or last frame, which the protocol
        does not score.

    Raises
    ------
    FileNotFoundError
        Naming the missing sequence folder or the first missing scored frame (and the other
        numbering when the files fit it).
    ValueError
        For a ``first_index`` other than 0 or 1, or two files of one frame number.
    """
    if str(first_index) not in ("0", "1"):
        raise ValueError(
            f"predictions_first_index must be 0 (file 00000.png is annotation 00000, the "
            f"official layout) or 1 (file 00001.png is annotation 00000), got {first_index!r}"
        )
    offset = int(first_index)
    sequence_folder = Path(folder) / sequence
    if not sequence_folder.is_dir():
        raise FileNotFoundError(
            f"predictions for sequence {sequence!r} missing: no folder {sequence_folder}"
        )
    files = numbered_files(sequence_folder, (".png",))
    aligned = [files.get(frame + offset) for frame in range(n_frames)]
    for frame in range(1, n_frames - 1):
        if aligned[frame] is None:
            other = 1 - offset
            fits_other = all(f + other in files for f in range(1, n_frames - 1))
            hint = (
                f"; every scored frame has a file if they are numbered from {other}: set "
                f"predictions_first_index={other} if that is their numbering"
                if fits_other
                else ""
            )
            raise FileNotFoundError(
                f"predictions for {sequence!r} numbered from {offset} "
                f"(predictions_first_index={offset}): frame {frame} missing "
                f"(expected {sequence_folder / f'{frame + offset:05d}.png'}){hint}"
            )
    return aligned
