"""Where the report tests find Chromium and put screenshots (shared by conftest.py and the async
end-to-end test, which drives playwright's async API inside its own event loop)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium's flags: headless, no sandbox (root in CI), and none of its own background traffic
#: (this machine refuses Chromium's connections, and a report must make none anyway).
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
VIEWPORT = {"width": 1200, "height": 900}


def artifacts_dir() -> Path:
    """``$CANARY_ENGINE_ARTIFACTS``, else ``test-artifacts/`` at the repository root."""
    path = Path(os.environ.get("CANARY_ENGINE_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_chromium() -> None:
    """Fail (never skip) without Debian's Chromium: CI must have looked at the reports."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the report tests open each report in Debian's headless "
            "Chromium. Install it with `apt-get install chromium chromium-driver` "
            "(bash .ci/run does).",
            pytrace=False,
        )
