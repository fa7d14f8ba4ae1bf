"""Regenerate ``docs/img/report.png``, the README's picture of ``simulate --report``.

Replays the bundled bad example (config/examples/webhook-server-bad.json), writes its report,
opens it in Debian's headless Chromium (``apt-get install chromium``; no browser is downloaded)
and saves the whole page with the first failed request-duration check hovered:

    python3 scripts/report_screenshot.py [--out docs/img/report.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Finds the first "fail" mark of the request-duration plot and returns its centre on screen.
_FIRST_FAIL = """() => {
    const heading = [...document.querySelectorAll('h3')]
        .find((h) => h.textContent === 'request-duration');
    const gd = heading.nextElementSibling.querySelector('.plotly-graph-div');
    const i = gd.data.findIndex((t) => t.name === 'fail');
    const mark = gd.querySelectorAll('.scatterlayer .trace')[i].querySelector('.points > .point');
    const r = mark.getBoundingClientRect();
    return {x: r.x + r.width / 2, y: r.y + r.height / 2};
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "report.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "simulate",
                "--canary",
                "config/examples/webhook-server.yaml",  # relative: the report shows the path
                "--recording",
                "config/examples/webhook-server-bad.json",
                "--report",
                str(report),
            ],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if not report.exists():
            sys.stderr.write("simulate wrote no report\n")
            return 1
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every((gd) => gd.querySelector('.main-svg'))"
            )
            # Hover as on a full-page screenshot: the viewport is made as tall as the page.
            height = page.evaluate("() => document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1200, "height": height})
            point = page.evaluate(_FIRST_FAIL)
            page.mouse.move(point["x"], point["y"])
            page.wait_for_timeout(300)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    sys.stdout.write(f"{args.out} ({args.out.stat().st_size // 1024} KB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
