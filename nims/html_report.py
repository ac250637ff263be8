"""``report.html``: one self-contained page per evaluation run, opened without a server.

The summary (a narrow table per group of measures), the per-sequence table (sortable by
clicking a column header), and per sequence a strip of chosen frames (image, flow, relevance,
mask over the image with the ground truth outlined, saliency; each panel named, with its key)
with J and F of each frame. The page fits a 1280-pixel screen: a table wider than that
scrolls in its own box. Images are embedded as base64 PNG, so the
file can be mailed or archived alone. When the page has loaded it records what it holds in
``data-*`` attributes of ``<body>`` (tables, rows, images decoded), which a headless browser
reads back (``tests/test_html_report.py``).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from nims.report import atomic_write_text

CAPTION_KEYS = ("J", "F", "logit")  # what a strip's caption reports, when the run has it
STRIP_PANELS = ("image", "flow", "relevance", "mask (ground truth in green)", "saliency")

SCRIPT = """
function sortTable(header) {
  const table = header.closest('table');
  const column = Array.from(header.parentNode.children).indexOf(header);
  const ascending = header.dataset.order !== 'ascending';
  const rows = Array.from(table.tBodies[0].rows);
  const key = row => {
    const text = row.cells[column].textContent;
    const number = parseFloat(text);
    return isNaN(number) ? text : number;
  };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
  rows.forEach(row => table.tBodies[0].appendChild(row));
  header.dataset.order = ascending ? 'ascending' : 'descending';
}
window.addEventListener('load', () => {
  document.querySelectorAll('table.sortable th').forEach(th =>
    th.addEventListener('click', () => sortTable(th)));
  if (location.hash === '#sort-by-first-measure') {
    sortTable(document.querySelector('#per-sequence th:nth-child(2)'));
  }
  const images = Array.from(document.images);
  document.body.dataset.tables = document.querySelectorAll('table').length;
  document.body.dataset.sequenceRows = document.querySelectorAll('#per-sequence tbody tr').length;
  document.body.dataset.imagesDecoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.firstSequence =
    document.querySelector('#per-sequence tbody tr td').textContent;
  document.body.dataset.pageWidth = document.documentElement.scrollWidth;
  document.body.dataset.viewWidth = document.documentElement.clientWidth;
});
"""

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; cursor: pointer; }
td:first-child, th:first-child { text-align: left; }
.strip img { display: block; max-width: 100%; }
.groups { display: flex; flex-wrap: wrap; gap: 0 2em; }
.groups h3 { font-size: 0.95em; margin: 0.5em 0 0; }
.wide { max-width: 100%; overflow-x: auto; }
.caption { font-size: 0.85em; color: #555; margin: 0.2em 0 0.8em; }
"""


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.3f}"
    return html.escape(str(value))


def _table(rows: Sequence[Mapping[str, object]], columns: Sequence[str], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(column, ''))}</td>" for column in columns) + "</tr>"
        for row in rows
    )
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


SUMMARY_GROUPS = (  # (heading, key prefix), in the page's order; a key goes to the first match
    ("segmentation", "J"),
    ("segmentation", "F"),
    ("oracle selection (step 2's ceiling)", "oracle_"),
    ("relevance diagnostic", "relevance_"),
)


def _summary_tables(summary: Mapping[str, object]) -> str:
    """The summary as a few narrow two-column tables, one per group of measures, side by side
    (wrapping on a narrow screen) instead of one row wider than the page."""
    groups: dict[str, list[str]] = {heading: [] for heading, _ in SUMMARY_GROUPS}
    for key in summary:
        heading = next((h for h, prefix in SUMMARY_GROUPS if key.startswith(prefix)), "other")
        groups.setdefault(heading, []).append(key)
    tables = []
    filled = [(heading, keys) for heading, keys in groups.items() if keys]
    for index, (heading, keys) in enumerate(filled):
        rows = "".join(
            f"<tr><td>{html.escape(key)}</td><td>{_cell(summary[key])}</td></tr>" for key in keys
        )
        table_id = "summary" if index == 0 else f"summary-{index}"
        tables.append(
            f'<div><h3>{html.escape(heading)}</h3><table id="{table_id}">'
            f"<tbody>{rows}</tbody></table></div>"
        )
    return '<div class="groups">' + "".join(tables) + "</div>"


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_html_report(
    folder: Path,
    title: str,
    summary: dict[str, float],
    per_sequence: list[dict[str, object]],
    per_frame: list[dict[str, object]],
) -> Path:
    """Write ``folder/report.html`` from a run's tables and its ``report/<sequence>/NNNNN.png``
    strips (written while the sequences, or videos, ran; one without strips gets its tables
    only).

    Parameters
    ----------
    summary : dict
        The dataset figures (J&F, J/F Mean, Recall, Decay, and any diagnostic).
    per_sequence : list of dict
        Rows with ``Sequence`` and the per-sequence statistics.
    per_frame : list of dict
        Rows with ``sequence``, ``frame`` and what captions report when present: ``J``,
        ``F``, ``logit``.
    """
    folder = Path(folder)
    scores = {(row["sequence"], int(row["frame"])): row for row in per_frame}
    sections = []
    for row in per_sequence:
        sequence = str(row["Sequence"])
        strips = sorted((folder / "report" / sequence).glob("*.png"))
        figures = []
        for strip in strips:
            frame = int(strip.stem)
            score = scores.get((sequence, frame), {})
            measures = ", ".join(
                f"{key} {_cell(score[key])}" for key in CAPTION_KEYS if key in score
            )
            figures.append(
                f'<div class="strip"><img alt="{html.escape(sequence)} frame {frame}" '
                f'src="{_png(strip)}"><div class="caption">frame {frame}'
                f"{': ' + measures if measures else ''}</div></div>"
            )
        sections.append(
            f'<h3 id="{html.escape(sequence)}">{html.escape(sequence)}</h3>' + "".join(figures)
        )
    columns = [key for key in per_sequence[0] if key != "Sequence"] if per_sequence else []
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{SCRIPT}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><h2>Summary</h2>"
        + _summary_tables(summary)
        + "<h2>Per sequence</h2><p>Click a column header to sort.</p>"
        + '<div class="wide">'
        + _table(per_sequence, ["Sequence", *columns], "per-sequence")
        + "</div><h2>Frames</h2><p>Panels, left to right: "
        + ", ".join(STRIP_PANELS)
        + "; each with its name above and its key below.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
    return atomic_write_text(folder / "report.html", page)
