"""The grid of a range query: which instants a ``query_range`` is evaluated at, and how a window
longer than Prometheus answers at once is split. Pure arithmetic, shared by the live source
(``analysis._prometheus``) and the recorded one (``analysis._recorded``, so ``simulate`` reads a
recording exactly where a live range query would read Prometheus), without the HTTP client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis._types import FailureKind, QueryFailure, SeriesRequest

#: Prometheus refuses range queries of more steps than this per series ("exceeded maximum
#: resolution of 11,000 points per timeseries"); ``range_params`` clamps to it.
MAX_RANGE_STEPS = 11_000
#: How long after an analysis started a judge's canary window begins (Prometheus keeps
#: milliseconds): the grid point at the start itself reads what was scraped before it, which is
#: not this run's canary. The recorded source reads canary rows from the start on.
CANARY_WINDOW_OFFSET = 0.001
#: ``fetch_series`` reads a longer window as consecutive range queries of at most this many points
#: (10,999 steps) each, inside Prometheus' limit however it counts.
RANGE_CHUNK_POINTS = 11_000


@dataclass(frozen=True, slots=True)
class RangeGrid:
    """A range-query grid: every ``step_ms`` back from ``end_ms`` (milliseconds)."""

    end_ms: int
    step_ms: int

    def start_ms(self, steps: int) -> int:
        return self.end_ms - steps * self.step_ms

    def chunks(self, steps: int) -> list[tuple[int, int]]:
        """The ``(start_ms, end_ms)`` of the range queries that read the grid's newest
        ``steps + 1`` points, oldest first: consecutive, at most ``RANGE_CHUNK_POINTS`` points
        each, every point in exactly one."""
        spans: list[tuple[int, int]] = []
        newest = 0  # steps back from ``end_ms`` to a chunk's newest point
        while newest <= steps:
            oldest = min(steps, newest + RANGE_CHUNK_POINTS - 1)
            spans.append((self.start_ms(oldest), self.start_ms(newest)))
            newest = oldest + 1
        spans.reverse()
        return spans


def invalid_range(request: SeriesRequest) -> QueryFailure | None:
    """Why the window cannot be asked for (checked before sending), or None."""
    start, end, step = request.start, request.end, request.step
    problem = ""
    if not all(math.isfinite(x) for x in (start, end, step)):
        problem = "start, end and step must be finite numbers"
    elif round(step * 1000) < 1:
        problem = "the step must be at least 1ms"
    elif end < start:
        problem = "the end is before the start"
    if not problem:
        return None
    return QueryFailure(
        FailureKind.REJECTED,
        f"invalid series window (start {start!r}, end {end!r}, step {step!r}s): {problem}",
    )


def range_grid(request: SeriesRequest) -> tuple[RangeGrid, int]:
    """The request's grid (on the Unix-epoch multiples of its step: ``analysis._prometheus``
    says why) and how many steps of it its window holds: all of them, however many."""
    return grid_of(request.start, request.end, request.step, align=True)


def grid_of(start: float, end: float, step: float, *, align: bool) -> tuple[RangeGrid, int]:
    # Whole milliseconds inside [start, end]; the 1µs slack absorbs float noise (1e12 ms scale).
    end_ms = math.floor(end * 1000 + 0.001)
    start_ms = math.ceil(start * 1000 - 0.001)
    step_ms = max(1, round(step * 1000))
    if align and (aligned := end_ms - end_ms % step_ms) >= start_ms:
        # The newest multiple of the step at or before the end: in (end - step, end]. A window
        # holding none (shorter than a step) keeps its end, or it would have no sample at all.
        end_ms = aligned
    return RangeGrid(end_ms=end_ms, step_ms=step_ms), max(0, end_ms - start_ms) // step_ms


def range_params(start: float, end: float, step: float) -> dict[str, str]:
    """``start``/``end``/``step`` of one ``query_range`` (whole milliseconds, anchored at ``end``,
    at most ``MAX_RANGE_STEPS``: the newest samples of a longer window), for the sources that
    speak Prometheus' API under another name (Chronosphere, Azure Monitor), which are asked
    afresh on every tick and never grouped."""
    grid, steps = grid_of(start, end, step, align=False)
    steps = min(MAX_RANGE_STEPS, steps)
    return {
        "start": ms_text(grid.start_ms(steps)),
        "end": ms_text(grid.end_ms),
        "step": ms_text(grid.step_ms),
    }


def ms_text(ms: int) -> str:
    """Milliseconds as the decimal seconds Prometheus parses (exact)."""
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    return f"{sign}{whole}" if not frac else f"{sign}{whole}.{frac:03d}"
