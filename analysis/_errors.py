"""Errors of the analysis layer.

Tree (all derive from ``config.CanaryEngineError``)::

    CanaryEngineError
    └── AnalysisError            misuse of the analysis API (a source answering the wrong count)
        ├── RenderError          a query template cannot be rendered safely (missing variable,
        │                        unknown function, a value that would change the query's structure)
        └── MetricQueryError     one query could not be answered; ``kind`` says how
            ├── NoValuesFound        empty vector or NaN (Flagger's ErrNoValuesFound)
            ├── AmbiguousResult      several series where one value is expected (§12 Q13)
            ├── QueryRejected        the provider refused the query (4xx): permanent until edited
            ├── ProviderUnavailable  connection error, 5xx, 429: transient
            └── QueryTimeout         no answer in time: transient

Metric sources never let a ``MetricQueryError`` escape for a single query: they turn it into a
``QueryFailure`` with ``error.to_failure()`` so one bad query cannot cancel its siblings. Imports
only ``config`` and ``analysis._types``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from analysis._types import FailureKind, QueryFailure
from config import CanaryEngineError


class AnalysisError(CanaryEngineError):
    """Root of the analysis layer's errors."""


class RenderError(AnalysisError):
    """A query template could not be rendered; the message names the template and the cause."""


class MetricQueryError(AnalysisError):
    """One metric query could not be answered. ``kind`` classifies it for the evaluator."""

    kind: ClassVar[FailureKind] = FailureKind.TRANSPORT

    def to_failure(self) -> QueryFailure:
        return QueryFailure(self.kind, str(self))


class NoValuesFound(MetricQueryError):
    kind = FailureKind.NO_DATA

    def __init__(self, message: str = "no values found") -> None:
        super().__init__(message)


class AmbiguousResult(MetricQueryError):
    """Several series came back where one value is expected; the message names their labels."""

    kind = FailureKind.AMBIGUOUS

    #: Label sets the message names; a query that fans out into thousands of series is shown by
    #: its first few (writing them all out took seconds of the event loop for 100,000 series).
    SHOWN = 5

    def __init__(self, label_sets: Sequence[Mapping[str, str]]) -> None:
        self.label_sets = [dict(labels) for labels in label_sets]
        shown = ", ".join(_format_labels(labels) for labels in self.label_sets[: self.SHOWN])
        more = len(self.label_sets) - self.SHOWN
        if more > 0:
            shown += f" and {more} more"
        super().__init__(
            f"query returned {len(self.label_sets)} series where one value is expected: {shown}; "
            "aggregate the query (e.g. sum(...)) so it returns a single series"
        )


class QueryRejected(MetricQueryError):
    kind = FailureKind.REJECTED

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of the answer that rejected the query, when one did (a ping reads it:
        #: the message quotes the server's body, which may say anything).
        self.status = status


class ProviderUnavailable(MetricQueryError):
    kind = FailureKind.TRANSPORT


class QueryTimeout(MetricQueryError):
    kind = FailureKind.TIMEOUT


def _format_labels(labels: Mapping[str, str]) -> str:
    # PromQL's own notation, so the user can paste a label set back into a selector.
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return "{" + inner + "}"
