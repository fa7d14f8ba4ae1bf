"""Fixtures for the HTML report tests: Debian's headless Chromium driven by playwright, and the
directory where screenshots go (CI keeps it as test artefacts).

The browser is never downloaded: playwright drives ``/usr/bin/chromium`` (``apt-get install
chromium chromium-driver``, which ``.ci/run`` does). Without it the browser tests fail with that
instruction rather than skip, so CI cannot go green without having looked at a report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.report.browser_env import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    artifacts_dir,
    require_chromium,
)


# Module scope, not session: playwright's sync API runs an event loop on this thread while the
# browser is open, and every later test that calls asyncio.run (simulate) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class OpenedReport:
    """A report open in a browser tab, with everything the page did while loading."""

    page: Any
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def marks(self, plot_id: str) -> dict[str, int]:
        """SVG marks drawn per trace of one plot: {trace name: number of point/bar paths}."""
        counts: list[list[Any]] = self.page.evaluate(
            """(id) => {
                const gd = document.getElementById(id);
                const layers = gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace');
                return [...layers].map((g, i) => [
                    gd.data[i].name, g.querySelectorAll('.points > .point').length]);
            }""",
            plot_id,
        )
        out: dict[str, int] = {}
        for name, count in counts:
            out[name] = out.get(name, 0) + count
        return out

    def hover_text(self, plot_id: str, trace: str, index: int) -> str:
        """Move the mouse onto the ``index``-th mark of trace ``trace`` and return the hover
        label's text, as a person would see it (lines joined by spaces)."""
        box = self.page.evaluate(
            """([id, trace, index]) => {
                const gd = document.getElementById(id);
                const layers = gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace');
                const i = gd.data.findIndex((t) => t.name === trace);
                const mark = layers[i].querySelectorAll('.points > .point')[index];
                mark.scrollIntoView({block: 'center'});
                const r = mark.getBoundingClientRect();
                return {x: r.x + r.width / 2, y: r.y + r.height / 2};
            }""",
            [plot_id, trace, index],
        )
        # Plotly throttles hover to one update per 50 ms: move once, then let the label settle.
        self.page.mouse.move(box["x"], box["y"])
        label = self.page.locator(f"#{plot_id} .hoverlayer text")
        label.first.wait_for(state="attached", timeout=5000)
        self.page.wait_for_timeout(200)
        text: str = self.page.evaluate(
            """(id) => [...document.querySelectorAll(`#${id} .hoverlayer text`)]
                .map((t) => [...t.childNodes].map((n) => n.textContent).join(' ')).join(' ')""",
            plot_id,
        )
        return " ".join(text.split())

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir() / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_report(browser: Any) -> Iterator[Any]:
    """``open_report(path)`` opens a report from a file:// URL and waits until every plot has
    drawn; the tab records console errors, page errors and every request it made."""
    pages: list[Any] = []

    def _open(path: Path) -> OpenedReport:
        page = browser.new_page(viewport=VIEWPORT)
        pages.append(page)
        opened = OpenedReport(page=page, url=path.resolve().as_uri())
        page.on(
            "console",
            lambda m: opened.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: opened.console_errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: opened.console_errors.append(f"failed: {r.url}"))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(opened.url, wait_until="load")
        page.wait_for_function(
            """() => [...document.querySelectorAll('.plotly-graph-div')]
                .every((gd) => gd._fullLayout && gd.querySelector('.main-svg'))""",
            timeout=20_000,
        )
        return opened

    yield _open
    for page in pages:
        page.close()
