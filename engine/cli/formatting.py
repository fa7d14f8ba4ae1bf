"""How the command line writes a value, a time and a bound, the same in every view.

simulate's timeline, ``get``'s table and the HTML reports use these, so a reader comparing them
sees one number written one way.
"""

from __future__ import annotations

import math


def number(value: float | None) -> str:
    """A metric value to 6 significant digits; "no data" when there is none (None or NaN)."""
    if value is None or math.isnan(value):
        return "no data"
    return f"{value:.6g}"


def clock(seconds: float) -> str:
    """Seconds since the new revision was applied as ``m:ss`` (``-m:ss`` before time 0)."""
    sign = "-" if seconds < 0 else ""
    whole = int(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def bound(lo: float | None, hi: float | None, *, judged: bool, gap: str = "") -> str:
    """A check's static bound as a table cell (">=95 <=100"; ``gap`` goes between the sign and
    the number). A check without one is "vs primary" when a judge compares it with the primary,
    else "any"."""
    parts = [
        f"{sign}{gap}{limit:g}" for sign, limit in ((">=", lo), ("<=", hi)) if limit is not None
    ]
    return " ".join(parts) or ("vs primary" if judged else "any")
