"""The workshop's walk-through in a real browser: Debian's chromium, driven by Playwright's Python
package (never a browser download), on the dashboard that `up` started for the test stack.

Start traffic, fail the writer over (crash), watch the queue depth rise while the cluster is
unavailable and fall back to zero once it is back, then run a drill from the page and read 0 lost
on its scoreboard. The screenshot and the walk-through's duration are kept in test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

from sandbox.drills import drill
from sandbox.ops import traffic
from sandbox.platform.state import StackState, load
from sandbox.standins.dashboard import dashboard_url
from tests.conftest import PATIENCE, wait_for
from tests.dashboard.conftest import restore

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
OUTAGE_SECONDS = 5  # long enough to queue up orders, short of the test queue's retry budget
#: Every line "Stop traffic" can answer (`dashboard.actions.stop_traffic`, `controls._act`).
STOP_ANSWERS = ("traffic stopped: sent", "no traffic was running", "stop traffic failed")


def until[T](check: Callable[[], T], what: str | Callable[[], str]) -> T:
    """Poll ``check`` until it returns something truthy; fail after `PATIENCE`."""

    def seen() -> T | None:
        try:
            return check()
        except PlaywrightError:  # the element is being redrawn: try again
            return None

    return wait_for(seen, what, interval=0.25)


def metrics(page: Page, label: str) -> list[str]:
    """The values of every metric labelled exactly ``label``."""
    labelled = page.locator("[data-testid='stMetricLabel']").get_by_text(label, exact=True)
    boxes = page.locator("[data-testid='stMetric']").filter(has=labelled)
    return [v.inner_text() for v in boxes.locator("[data-testid='stMetricValue']").all()]


def queue_depth(page: Page) -> int | None:
    """None until the page shows it (or while SQS does not answer: "?")."""
    values = metrics(page, "queue depth")
    return int(values[0]) if values and values[0].isdigit() else None


def set_number(page: Page, label: str, value: float) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(f"{value:g}")
    field.press("Enter")  # Streamlit takes a number input's value on Enter (or blur)
    until(lambda: field.input_value() in (f"{value:g}", f"{value:.2f}"), f"{label} = {value}")


def click(page: Page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


def shows(page: Page, text: str | re.Pattern[str]) -> bool:
    """The page shows ``text``: any element with it is visible (the first one found may be a
    copy that is not, while Streamlit redraws)."""
    return page.get_by_text(text).filter(visible=True).count() > 0


def notices(page: Page) -> list[str]:
    """The texts of the notices the page shows (st.success, st.error, ...)."""
    return page.locator("[data-testid='stAlertContainer']").filter(visible=True).all_inner_texts()


def alert(page: Page, starts: tuple[str, ...]) -> str | None:
    """The text of the first notice on the page that starts with one of ``starts``."""
    return next((text for text in notices(page) if text.startswith(starts)), None)


def seen_after_stop(state: StackState, page: Page) -> str:
    """What a failed wait for Stop traffic's answer reports: the page, the traffic, the log."""
    try:
        shown: list[str] | str = notices(page)
    except PlaywrightError as error:
        shown = f"unreadable ({error})"
    log = Path(state.path("logs", "dashboard.log"))
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    return (
        f"the page's answer to Stop traffic (its notices: {shown}; the traffic's last report: "
        f"{ {k: v for k, v in (traffic.stats(state) or {}).items() if k != 'per_second'} }; "
        "the dashboard's log ends: " + " | ".join(tail) + ")"
    )


@pytest.fixture
def browser(live: StackState) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "no /usr/bin/chromium: `make test` installs it (as root)"
    ARTIFACTS.mkdir(exist_ok=True)
    restore(live)  # the walk-through starts from n1 the writer, whatever ran before it
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        # Streamlit scrolls inside its own container: a tall window shows the whole page.
        page = chromium.new_page(viewport={"width": 1500, "height": 1800})
        # Playwright's own waits (a click waits until the page takes it) get the tests' patience:
        # its default 30 s ran out on a busy machine while chromium redrew the live page.
        page.set_default_timeout(PATIENCE * 1000)
        try:
            yield page
        finally:
            page.screenshot(path=ARTIFACTS / "dashboard-last.png")  # also after a failure
            chromium.close()
            # The page's drill runs in the dashboard's process: let it end before restoring.
            wait_for(
                lambda: (drill.last(live) or {}).get("status") != "running",
                "the end of the drill started from the page",
            )
            restore(live)


#: What the page measures of itself at a projector's size (`on_a_projector`): font sizes, where
#: the first screen's parts are against the window, and every label, figure and table cell whose
#: text is wider than its box (cut, or run past its table's edge).
MEASURE = """() => {
  const px = (element) => parseFloat(getComputedStyle(element).fontSize);
  const main = document.querySelector("[data-testid='stMain']");
  const svg = document.querySelector("[data-testid='stGraphVizChart'] svg");
  const texts = [...svg.querySelectorAll("text")];
  // the size the text is drawn at (the page's CSS, not Graphviz's attribute) on the screen
  const size = (t) => px(t) * t.getScreenCTM().a;
  const inBox = (t) => t.closest("g.node") !== null;
  const metrics = (label) => [...main.querySelectorAll("[data-testid='stMetric']")]
    .filter((m) => m.querySelector("[data-testid='stMetricLabel']").innerText.trim() === label);
  const keyed = (key) => main.querySelector(`.st-key-${key}`);
  const parts = {
    picture: svg,
    "queue depth": metrics("queue depth")[0],
    "depth chart": main.querySelector("[data-testid='stVegaLiteChart']"),  // the first chart
    scoreboard: keyed("scoreboard"),
  };
  const where = (e) => {
    if (!e) return "not found";
    const r = e.getBoundingClientRect();
    const inside = r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
    return inside ? "on screen" : `at ${r.left},${r.top} to ${r.right},${r.bottom}`;
  };
  const wide = (e) => e.scrollWidth > e.clientWidth + 1;
  const said = (e) => `${e.innerText.trim().slice(0, 40)} (${e.scrollWidth} > ${e.clientWidth})`;
  const labels = main.querySelectorAll(
    "[data-testid='stMetricLabel'], [data-testid='stMetricLabel'] *, " +
    "[data-testid='stMetricValue'], [data-testid='stMetricValue'] *");
  const tables = ["replication", "components"].map((key) => [key, keyed(key)]);
  const cells = tables.flatMap(([, box]) => box ?
    [...box.querySelectorAll("[data-testid='stTable'], [data-testid='stTable'] *")] : []);
  return {
    caption: px(main.querySelector("[data-testid='stCaptionContainer']")),
    boxes: Math.min(...texts.filter(inBox).map(size)),
    arrows: Math.min(...texts.filter((t) => !inBox(t)).map(size)),
    depth: px(parts["queue depth"].querySelector("[data-testid='stMetricValue']")),
    lost: metrics("lost").map((m) => px(m.querySelector("[data-testid='stMetricValue']"))),
    where: Object.fromEntries(Object.entries(parts).map(([name, e]) => [name, where(e)])),
    // static tables (HTML): a canvas grid (st.dataframe) cuts its cells where no one can see
    tables: Object.fromEntries(tables.map(([key, box]) => [key, box ? [
      box.querySelectorAll("[data-testid='stTable'] td").length,
      box.querySelectorAll("[data-testid='stDataFrame']").length] : "not found"])),
    cut: [...labels, ...cells, main].filter(wide).map(said),
  };
}"""


def on_a_projector(page: Page) -> None:
    """At 1280x720 (a projector's usual size, the sidebar open), the first screen of the main
    area holds the picture, the queue depth, the depth chart and the scoreboard, whole; no
    label, figure or table cell is cut; the picture's text is no smaller than the page's
    captions, and the queue depth and the scoreboard's "lost" are large figures. (The charts
    were below it, a seven-figure row read `queue: s…`, and the grids of the replication and
    components tables cut `po…` and `127.0.0.1:1…`; in one row of ten boxes the picture's text
    was 7 px.) The screenshot is kept as dashboard-1280x720.png."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.locator("[data-testid='stMain']").evaluate("main => main.scrollTo(0, 0)")
    on_screen = dict.fromkeys(("picture", "queue depth", "depth chart", "scoreboard"), "on screen")
    # Streamlit lays the page out again for the new size: measure once it has settled there.
    sizes = until(
        lambda: seen if (seen := page.evaluate(MEASURE))["where"] == on_screen else None,
        lambda: f"the first screen's parts on screen at 1280x720: {page.evaluate(MEASURE)}",
    )
    page.screenshot(path=ARTIFACTS / "dashboard-1280x720.png")
    assert sizes["cut"] == [], sizes
    assert all(cells > 0 and grids == 0 for cells, grids in sizes["tables"].values()), sizes
    assert sizes["boxes"] >= 0.9 * sizes["caption"], sizes
    assert sizes["arrows"] >= 0.75 * sizes["caption"], sizes
    assert sizes["depth"] >= 2 * sizes["caption"], sizes
    assert len(sizes["lost"]) == 2 and min(sizes["lost"]) >= 2 * sizes["caption"], sizes


def test_crash_failover_walk_through_in_a_real_browser(live: StackState, browser: Page):
    page = browser
    started = time.monotonic()
    page.goto(dashboard_url(live))
    until(lambda: queue_depth(page) == 0, "the page with an empty queue")
    first_render = time.monotonic() - started

    set_number(page, "rate (orders/s)", 30)
    click(page, "Start traffic")
    until(lambda: shows(page, "traffic at 30/s for at most 600 s"), "traffic started")
    set_number(page, "outage (s)", OUTAGE_SECONDS)
    click(page, "Fail over")
    risen = until(lambda: depth if (depth := queue_depth(page) or 0) >= 20 else None, "a rise")
    # ("->" reads "→" in the browser: Streamlit's markdown typesets it)
    done = re.compile(r"^failover \(crash\): n1 \S+ n2")
    until(lambda: shows(page, done), "the failover's end")
    assert load().writer.name == "n2"
    click(page, "Stop traffic")
    answer = until(lambda: alert(page, STOP_ANSWERS), lambda: seen_after_stop(live, page))
    assert answer.startswith("traffic stopped: sent"), (
        f"the page said {answer!r}; the traffic's last report: {traffic.stats(live)}"
    )
    until(lambda: queue_depth(page) == 0, "the queue drained to zero")
    walk_through = time.monotonic() - started

    click(page, "Run drill")  # the sidebar's defaults: crash, both paths, 300 each at 50/s
    until(lambda: shows(page, re.compile(r"done: 0 lost")), "the drill's report")
    # The scoreboard is drawn path by path: wait for both paths' "lost" before reading them.
    lost = until(lambda: v if len(v := metrics(page, "lost")) == 2 else None, "both paths' lost")
    assert lost == ["0", "0"], "one 'lost' per path, both 0"
    direct_line = re.compile(r"^direct: \d+ accepted, .* client error\(s\); the accounting adds up")
    until(lambda: shows(page, direct_line), "the direct path's line")
    queue_line = re.compile(r"^queue: 300 accepted, 0 in the DLQ, 0 still queued, 0 client error")
    until(lambda: shows(page, queue_line), "the queued path's line")
    report = drill.last(live)
    assert report is not None and [p["lost"] for p in report["paths"]] == [0, 0]
    whole = time.monotonic() - started
    page.screenshot(path=ARTIFACTS / "dashboard.png")
    on_a_projector(page)
    timings = {
        "first_render_s": round(first_render, 1),
        "queue_depth_seen": risen,
        "crash_failover_walk_through_s": round(walk_through, 1),
        "with_drill_s": round(whole, 1),
    }
    (ARTIFACTS / "walk-through.json").write_text(json.dumps(timings, indent=2))
    print(f"walk-through in the browser: {timings}")
