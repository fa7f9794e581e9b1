"""DVC plots that render with no network: the offline page template, opened in headless Chromium, and the export.

The browser tests run the tiny pipeline as two experiments (two learning rates), set the project up as
`make setup` does (`python -m plots.offline`), then open the `dvc plots show` and `dvc plots diff`
pages from file:// in Debian's chromium with every network request refused, and keep a screenshot of
each page under test-artifacts/.
"""

import contextlib
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import pytest
from helpers import PNG_MAGIC, ROOT, TINY, commit_all, copy_project, dvc, run, write_params

from plots.offline import DVC_PLACEHOLDERS, MARKER, TEMPLATE, inline

CHROMIUM = shutil.which("chromium")
ARTIFACTS = ROOT / "test-artifacts"
EXPERIMENTS = ("lr-0.001", "lr-0.01")  # the same tiny run at two learning rates
# DVC's div id of each chart (dvc.yaml's top-level plots, then the stages' plot files) -> its title.
CHARTS = {
    "Accuracy": "Accuracy per epoch (train and validation)",
    "Loss": "Loss per epoch (train and validation)",
    "metrics_history_csv": "Learning rate per epoch (ReduceLROnPlateau)",
    "metrics_confusion_csv": "Test set confusion matrix",
}
PICTURES = ("learning_curves.png", "predictions.png", "misclassified.png")
VIEWPORT = {"width": 1400, "height": 900}
MIN_CHART_WIDTH = 500  # px: a chart fills its half of the page (or more), not DVC's default 300
# Debian's chromium as root, with nothing that phones home; name resolution is off as well.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
LOCAL_SCHEMES = {"file", "data", "blob", "about"}

# DVC's container of each Vega chart (vega-embed replaces its <script>); the others hold pictures.
CHART_CONTAINERS = '"body > div[id]:not(#plots-setup-needed):not(:has(img))"'
# What the page shows, read in the browser: each Vega chart's drawn marks and SVG text, each picture's size.
READ_PAGE = """() => {
    const charts = {};
    for (const div of document.querySelectorAll(CHART_CONTAINERS)) {
        charts[div.id] = {
            svg: div.querySelectorAll("svg").length,
            marks: div.querySelectorAll("svg g.role-mark > path, svg g.role-mark > text").length,
            canvas: div.querySelectorAll("canvas").length,
            text: [...div.querySelectorAll("svg text")].map((t) => t.textContent),
            width: Math.max(0, ...[...div.querySelectorAll("svg")].map((s) => s.getBoundingClientRect().width)),
            counts: [...div.querySelectorAll("svg g.mark-text.role-mark > text")].map((t) => t.textContent),
            axes: [...div.querySelectorAll("svg [aria-roledescription=axis]")].map((a) => a.getAttribute("aria-label")),
            note: [...div.querySelectorAll(".chart-missing, .chart-error")].map((p) => p.textContent),
        };
    }
    const pictures = [...document.querySelectorAll("img")].map((i) => [i.getAttribute("src"), i.naturalWidth]);
    const banner = document.getElementById("plots-setup-needed");
    const page = document.documentElement;
    // Whatever reaches past the right edge of the window (a picture could also overflow inside its own box).
    const outside = [...document.querySelectorAll("svg, img")]
        .filter((e) => e.getBoundingClientRect().right > page.clientWidth + 0.5)
        .map((e) => `${e.closest("div[id]").id} ${e.tagName}: ${e.getBoundingClientRect().right}`);
    return {charts, pictures, outside, scroll: [page.scrollWidth, page.clientWidth],
            banner: getComputedStyle(banner).display !== "none" ? banner.innerText : null};
}""".replace("CHART_CONTAINERS", CHART_CONTAINERS)
# Every chart either drawn or replaced by a note.
SETTLED = """() => [...document.querySelectorAll(CHART_CONTAINERS)]
    .every((div) => div.querySelector("svg g.role-mark, canvas, .chart-missing, .chart-error"))""".replace(
    "CHART_CONTAINERS", CHART_CONTAINERS
)


# --- the template, without a browser -------------------------------------------------------------


def test_the_committed_template_is_what_dvc_uses_on_a_fresh_clone_and_loads_nothing_remote():
    assert "html_template = ../plots/template.html" in (ROOT / ".dvc/config").read_text()
    template = (ROOT / TEMPLATE).read_text()
    assert template.count("{plot_divs}") == 1 and template.count(MARKER) == 1
    assert "{scripts}" not in template  # DVC would put its CDN <script> tags there
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", template)


def test_inline_puts_the_libraries_at_the_marker_in_a_function_scope():
    page = inline(f"<head>{MARKER}</head><body>{{plot_divs}}</body>", "window.vegaEmbed = () => 1;", "origin")
    assert page == (
        "<head><script>/* origin */\n(() => {\nwindow.vegaEmbed = () => 1;\n})();\n</script></head>"
        "<body>{plot_divs}</body>"
    )


def test_inline_keeps_a_closing_script_tag_in_the_code_from_ending_the_element():
    page = inline(MARKER, 'var s = "</script>", t = "</SCRIPT>";')
    assert page.count("</script>") == 1 and '"<\\/script>"' in page and '"<\\/SCRIPT>"' in page


@pytest.mark.parametrize("placeholder", DVC_PLACEHOLDERS)
def test_inline_refuses_code_that_dvc_would_rewrite(placeholder):
    with pytest.raises(ValueError, match="DVC would replace"):
        inline(MARKER, f"var s = '{placeholder}';")


def test_inline_needs_the_marker_once():
    with pytest.raises(ValueError, match="exactly once"):
        inline("<head></head>", "var x;")


# --- the pipeline's real pages in Chromium ------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
    pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    """The tiny pipeline run as two experiments, set up as `make setup` leaves a checkout."""
    project = copy_project(tmp_path_factory.mktemp("plots"))
    write_params(project, TINY)
    commit_all(project, "pipeline")
    dvc(project, "exp", "run", "-n", EXPERIMENTS[0])
    dvc(project, "exp", "run", "-n", EXPERIMENTS[1], "-S", "train.learning_rate=0.01")
    run([sys.executable, "-m", "plots.offline"], project)
    return project


def open_offline(chromium: str, page: Path, screenshot: str) -> dict:
    """Open a page from file:// with the network off; what it drew, what it asked for, what it logged."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    requested, refused, errors = [], [], []

    def refuse_remote(route):
        if urlparse(route.request.url).scheme in LOCAL_SCHEMES:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(offline=True, viewport=VIEWPORT)
            context.route("**/*", refuse_remote)
            tab = context.new_page()
            tab.on("request", lambda request: requested.append(request.url))
            tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            tab.goto(page.as_uri(), wait_until="load")
            with contextlib.suppress(PlaywrightTimeout):  # the assertions below say which chart is missing
                tab.wait_for_function(SETTLED, timeout=30_000)
            shown = tab.evaluate(READ_PAGE)
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=ARTIFACTS / screenshot, full_page=True)
        finally:
            browser.close()
    remote = [url for url in requested if urlparse(url).scheme not in LOCAL_SCHEMES]
    return shown | {"remote_requests": remote + refused, "errors": errors}


def assert_every_chart_drawn(shown: dict, pictures: int) -> None:
    assert sorted(shown["charts"]) == sorted(CHARTS)
    for chart_id, title in CHARTS.items():
        chart = shown["charts"][chart_id]
        assert chart["svg"] and chart["marks"] > 0, f"{chart_id} not drawn: {chart}"
        assert title in chart["text"], f"{chart_id} lacks its title: {chart['text']}"
        assert not chart["note"]
    assert len(shown["pictures"]) == pictures
    assert all(width > 0 for _, width in shown["pictures"]), shown["pictures"]
    assert shown["banner"] is None
    assert shown["remote_requests"] == []
    assert shown["errors"] == []


def assert_sized_to_the_page(shown: dict) -> None:
    """No horizontal scrolling at 1400 px, and every chart wide enough to read."""
    scroll_width, client_width = shown["scroll"]
    assert scroll_width <= client_width, f"the page scrolls sideways: {scroll_width} > {client_width}"
    assert shown["outside"] == []
    for chart_id, chart in shown["charts"].items():
        assert chart["width"] > MIN_CHART_WIDTH, f"{chart_id} is {chart['width']} px wide"


def assert_confusion_counts_written(shown: dict, revisions: int) -> None:
    """Each cell of the confusion matrix shows its count: together they count the test set once per revision."""
    chart = shown["charts"]["metrics_confusion_csv"]
    counts = [int(text.replace(",", "")) for text in chart["counts"] if text]
    assert len(counts) >= 10, chart["counts"]
    assert sum(counts) == TINY["preprocess.test_samples"] * revisions
    assert "mistakes" in chart["text"]  # the legend of the colour scale, which leaves out the diagonal


def assert_learning_rate_on_a_log_axis(shown: dict) -> None:
    axes = shown["charts"]["metrics_history_csv"]["axes"]
    assert any(axis.startswith("Y-axis titled 'learning rate' for a log scale") for axis in axes), axes


@pytest.mark.slow
def test_plots_show_draws_every_chart_offline_in_chromium(chromium, experiments):
    dvc(experiments, "plots", "show")
    index = experiments / "dvc_plots/index.html"
    assert not re.search(r"<script[^>]+src=", index.read_text())
    shown = open_offline(chromium, index, "plots-show.png")
    assert_every_chart_drawn(shown, pictures=len(PICTURES))
    assert_sized_to_the_page(shown)
    assert_confusion_counts_written(shown, revisions=1)
    assert_learning_rate_on_a_log_axis(shown)
    for picture in PICTURES:
        assert any(src.endswith(picture) for src, _ in shown["pictures"]), picture
    axes = shown["charts"]["Accuracy"]["text"]
    assert "epoch" in axes and "accuracy" in axes and "val_accuracy" in axes


@pytest.mark.slow
def test_plots_diff_draws_both_experiments_on_the_same_charts_offline(chromium, experiments):
    dvc(experiments, "plots", "diff", *EXPERIMENTS)
    shown = open_offline(chromium, experiments / "dvc_plots/index.html", "plots-diff.png")
    assert_every_chart_drawn(shown, pictures=len(PICTURES) * len(EXPERIMENTS))
    assert_sized_to_the_page(shown)
    for chart_id in ("Accuracy", "Loss", "metrics_history_csv", "metrics_confusion_csv"):
        legend = shown["charts"][chart_id]["text"]  # a legend, or the facet headers of the confusion matrix
        assert all(name in legend for name in EXPERIMENTS), f"{chart_id}: {legend}"
    assert_confusion_counts_written(shown, revisions=len(EXPERIMENTS))
    assert_learning_rate_on_a_log_axis(shown)


@pytest.mark.slow
def test_before_set_up_the_page_says_what_to_run_instead_of_staying_blank(chromium, experiments):
    """A fresh clone: no .dvc/config.local, so DVC uses the committed template that .dvc/config names."""
    local = experiments / ".dvc/config.local"
    saved = local.read_text()
    local.unlink()
    try:
        dvc(experiments, "plots", "show", "-o", "dvc_plots_fresh")
    finally:
        local.write_text(saved)
    shown = open_offline(chromium, experiments / "dvc_plots_fresh/index.html", "plots-not-set-up.png")
    assert "make setup" in shown["banner"] and "make plots-assets" in shown["banner"]
    for chart_id, title in CHARTS.items():
        (note,) = shown["charts"][chart_id]["note"]
        assert title in note and "make plots-assets" in note
    assert all(width > 0 for _, width in shown["pictures"])  # the pictures need no library
    assert shown["remote_requests"] == [] and shown["errors"] == []


# --- static export ------------------------------------------------------------------------------------


def exported(project: Path, *revisions: str) -> dict[str, Path]:
    run([sys.executable, "-m", "plots.export", *revisions], project)
    return {path.name: path for path in (project / "plots/export").iterdir()}


@pytest.mark.slow
def test_plots_export_writes_every_chart_as_svg_and_png(experiments):
    files = exported(experiments)
    for stem in ("accuracy", "loss", "metrics-history-csv", "metrics-confusion-csv"):
        svg = ET.parse(files.pop(f"{stem}.svg")).getroot()
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        assert files.pop(f"{stem}.png").read_bytes().startswith(PNG_MAGIC)
        if stem == "metrics-confusion-csv":  # the project's own template, counts written in the cells
            assert ">mistakes<" in ET.tostring(svg, encoding="unicode")
    assert sorted(files) == sorted(f"workspace_metrics_{picture}" for picture in PICTURES)
    assert all(path.read_bytes().startswith(PNG_MAGIC) for path in files.values())


@pytest.mark.slow
def test_plots_export_of_a_diff_puts_both_experiments_on_the_accuracy_chart(experiments):
    files = exported(experiments, *EXPERIMENTS)
    svg = files["accuracy.svg"].read_text()
    assert all(f">{name}<" in svg for name in EXPERIMENTS)
    assert not any(name.startswith("workspace_") for name in files)  # the last export's files are gone
