"""Numbers written as text by metric APIs, read as those APIs' own (Go) clients read them.

Prometheus writes a sample value as a string (``"12.5"``, ``"NaN"``, ``"+Inf"``), and several
providers answer numbers as strings too. Python's ``float()`` (and numpy's string conversion)
read more than Go's ``strconv.ParseFloat`` does: ``"1_000"``, digits of other scripts
(``"١٠٠"``) and surrounding whitespace. Such an answer is no number any Flagger observer would
have read: it is refused, never judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: What Python reads in a number and Go does not (non-ASCII digits are checked apart).
_PYTHON_ONLY = re.compile(r"[\s_]")


def plain_number_text(text: str) -> bool:
    """Whether ``text`` is free of what only Python reads as part of a number; ``float()``
    still decides whether it is one."""
    return text.isascii() and _PYTHON_ONLY.search(text) is None


def all_plain_number_texts(texts: Iterable[str]) -> bool:
    """``plain_number_text`` for every text, in one scan (a day of samples is 1,440 of them)."""
    return plain_number_text("".join(texts))


def parse_number_text(text: str) -> float:
    """``text`` as a float; ValueError when it is not a number as a Go client reads one."""
    if not plain_number_text(text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)
