"""The root of canary-engine's exception tree, and the configuration errors.

Tree (every exception the project raises derives from ``CanaryEngineError``)::

    CanaryEngineError
    ├── SpecError            invalid manifest, preset or recording; carries one Problem per fault
    ├── NotSupportedError    valid Flagger input that canary-engine does not implement yet
    └── (subtrees in analysis._errors and traffic._errors)

Only this module may be imported by every layer; it imports nothing of the project.
"""

from __future__ import annotations

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
        return f"{self.path}: {self.message}" if self.path else self.message


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


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut short so a message never quotes a whole hostile document."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer too long to print, a runaway structure
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
