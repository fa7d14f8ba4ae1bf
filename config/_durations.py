"""Parse Go-style duration strings ("30s", "1m", "1m30s", "500ms", "2h") into float seconds.

Go's ``time.ParseDuration`` grammar (what Flagger runs a value through). Flagger's CRD narrows
``analysis.interval``, ``metrics[].interval`` and ``webhooks[].timeout`` further to
``^[0-9]+(m|s)``; ``config._spec`` applies that pattern to those three fields.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
#: Go's time.Duration is an int64 of nanoseconds: ParseDuration refuses anything longer.
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(r"^(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+$")


def parse_duration(text: str) -> float:
    """Return the seconds in a Go duration string; raise ValueError with a readable reason."""
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return 0.0
    if not value or not _WHOLE.match(value):
        raise ValueError(
            f"must be a duration such as 30s, 1m or 1m30s (units ms, s, m, h), got {text!r}"
        )
    seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(value))
    if not seconds <= MAX_DURATION_SECONDS:  # also catches inf from absurdly long numbers
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(
            f"must be at most Go's longest duration (2562047h47m16.854775807s), got {shown!r}"
        )
    return seconds


def format_go_duration(seconds: float) -> str:
    """Format seconds the way Go's time.Duration.String() does ("212ms", "1.5s", "1m1s", "0s")."""
    if seconds == 0 or math.isnan(seconds):
        return "0s"
    sign = "-" if seconds < 0 else ""
    ns = round(abs(seconds) * 1e9)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1e3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1e6)}ms"
    hours, rem = divmod(ns, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    secs = _trim(rem / 1e9)
    out = ""
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{secs}s"


def format_interval(seconds: float) -> str:
    """Render seconds as the PromQL range used for ``{{ interval }}`` ("1m", "30s", "90s")."""
    whole = round(seconds)
    if whole > 0 and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
