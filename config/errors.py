"""The root of canary-engine's exception tree, and the configuration errors.

Tree (every exception the project raises derives from ``CanaryEngineError``)::

    CanaryEngineError
    ├── SpecError            invalid manifest, preset or recording; carries one Problem per fault
    ├── NotSupportedError    valid Flagger input that canary-engine does not implement yet
    └── (subtrees in analysis._errors and traffic._errors)

Only this module may be imported by every layer; it imports nothing of the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class CanaryEngineError(Exception):
    """Root of every exception raised by canary-engine."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in an input: where it is (a field path or file:line) and what would be valid."""

    path: str
    message: str

    def __str__(self) -> str:
        # printable: a name or a value quoted from the input must not drive the terminal
        path, message = printable(self.path), printable(self.message)
        return f"{path}: {message}" if path else message


class SpecError(CanaryEngineError):
    """An input (manifest, preset, recording) is invalid. ``problems`` lists every fault found."""

    def __init__(self, problems: list[Problem] | Problem, *, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{p}" for p in self.problems)


class NotSupportedError(CanaryEngineError):
    """Valid Flagger input that canary-engine cannot act on yet; the message says what and why."""


#: Characters that act on a terminal instead of showing: C0/C1 controls (ESC, CR, BEL, ...), DEL,
#: and the bidirectional overrides that reorder what follows them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every terminal control character written as an escape (``\x1b``,
    ``\n``, ``\u202e``): untrusted strings (names from a manifest, a server's error body in an
    event) shown on a terminal cannot clear it, recolour it, forge a line or link elsewhere."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut short so a message never quotes a whole hostile document."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer too long to print, a runaway structure
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
