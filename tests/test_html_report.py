"""report.html of an evaluation run, rendered by a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from nims import evaluate
from tests.conftest import tiny_davis

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no headless browser on this machine (looked for {', '.join(BROWSERS)}): "
        "apt-get install chromium to run this test; .ci/run installs it"
    )


def rendered_body(path, fragment=""):
    """The ``<body>`` tag of the page after its scripts ran, as the browser serialises it."""
    result = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--window-size=1280,900",
            "--dump-dom",
            f"file://{path}{fragment}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"<body[^>]*>", result.stdout)
    assert match, f"the browser rendered no page: {result.stderr[-2000:]}"
    return match.group(0)


def attribute(body, name):
    match = re.search(rf'data-{name}="([^"]*)"', body)
    assert match, f"data-{name} missing from {body}"
    return match.group(1)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from tests.conftest import CONFIG_DIR

    tmp_path = tmp_path_factory.mktemp("html")
    root = tiny_davis(tmp_path / "DAVIS", sequences=("zeta", "alpha"), frames=6)
    # alpha's ground truth is shifted: its J is lower, so sorting by J puts it first.
    for path in (root / "Annotations" / "480p" / "alpha").glob("*.png"):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(path), np.roll(mask, 20, axis=1))
    GlobalHydra.instance().clear()
    initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR))
    cfg = compose(
        "evaluate",
        [
            f"dataset.root={root}",
            "dataset.sequences=[zeta,alpha]",
            "logger=none",
            "progress=false",
            f"dataset.cache_dir={tmp_path / 'cache'}",
        ],
        return_hydra_config=True,
    )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    HydraConfig.instance().set_config(cfg)
    evaluate.run(cfg)
    GlobalHydra.instance().clear()
    return tmp_path / "run" / "report.html"


def test_the_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 2 * 4  # 4 strips per sequence
    assert "frame 1: J " in text and '<h3 id="alpha">' in text
    assert 'src="http' not in text and 'href="http' not in text


def test_a_headless_browser_renders_the_tables_and_images(report):
    body = rendered_body(report)
    assert int(attribute(body, "tables")) >= 3  # the summary's groups and the per-sequence table
    assert attribute(body, "sequence-rows") == "2"
    assert attribute(body, "images-decoded") == "8"
    assert attribute(body, "first-sequence") == "zeta"  # the run's order


def test_the_page_fits_a_1280_pixel_screen(report):
    body = rendered_body(report)
    assert 1200 <= int(attribute(body, "view-width")) <= 1280
    assert int(attribute(body, "page-width")) <= int(attribute(body, "view-width"))


def test_a_strip_names_each_panel_and_gives_its_key():
    from nims.figures import GROUND_TRUTH_COLOUR, MASK_COLOUR, report_strip
    from nims.methods import FrameResult

    image = np.full((120, 200, 3), 128, np.uint8)
    flow = np.zeros((120, 200, 2), np.float32)
    flow[40:80, 60:120, 0] = 3.0
    relevance = np.zeros((120, 200))
    relevance[50:70, 80:100] = 1.0
    relevance[0, 0] = 1000.0  # one outlier does not wash the map out
    truth = np.zeros((120, 200), bool)
    truth[40:80, 60:120] = True
    result = FrameResult(1.5, relevance, None, np.zeros((120, 200)), truth.copy())
    strip = report_strip(image, flow, result, truth, width=240)
    title, picture = 22, 144  # 120 x 200 shown 240 wide
    assert strip.shape == (title + picture + 34, 5 * 240, 3)
    for panel in range(5):
        header = strip[:title, panel * 240 : (panel + 1) * 240]
        assert (header < 128).any(), f"panel {panel} has no name"
    relevance_panel = strip[title : title + picture, 2 * 240 : 3 * 240].astype(int)
    blob = relevance_panel[72, 108]  # the unit blob, shown (near) full red despite the outlier
    assert blob[0] > 200 and blob[1] < 60 and blob[2] < 60
    keys = strip[title + picture :]
    assert (keys[:, 240:480] != 255).any(), "no colour wheel under the flow"
    assert (keys[:, 480:720] != 255).any() and (keys[:, 960:] != 255).any(), "no colour bars"
    mask_key = keys[:, 720:960].reshape(-1, 3)
    for colour in (MASK_COLOUR, GROUND_TRUTH_COLOUR):
        assert (mask_key == colour).all(axis=1).any(), f"{colour} missing from the mask's key"


def test_the_per_sequence_table_sorts_in_the_browser(report):
    import csv

    rows = list(csv.DictReader((report.parent / "per_sequence.csv").open()))
    assert list(rows[0])[:2] == ["Sequence", "J-Mean"]  # the DAVIS toolkit's names
    assert float(rows[1]["J-Mean"]) < float(rows[0]["J-Mean"])  # alpha below zeta
    body = rendered_body(report, "#sort-by-first-measure")  # a click on J-Mean
    assert attribute(body, "first-sequence") == "alpha"
