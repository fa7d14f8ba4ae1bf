"""Value types and seams of the analysis layer.

Flow for one tick: ``plan_checks`` turns a Canary's metrics into ``MetricQuery`` values (rendered
PromQL, bounds, unit); a ``MetricSource`` fetches a value or a ``QueryFailure`` for each; the
vectorised evaluator turns (values, bounds, failures) into a ``Verdict`` per check in one numpy
pass; ``CheckResult`` carries each verdict with Flagger's event message. Webhooks go through a
``WebhookCaller``. Nothing here touches Kubernetes; time comes in as a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from analysis._template_model import TemplateModel
from config import Webhook

if TYPE_CHECKING:  # ``validate`` imports this module and never numpy; annotations stay strings
    import numpy as np
    from numpy.typing import NDArray


class Verdict(IntEnum):
    """Outcome of one check. Only PASS is a pass: NO_DATA and ERROR count as failed checks
    (unless the metric's ``onNoData`` says otherwise); INCONCLUSIVE, which only a judge or a
    no-data policy gives, holds the weight without counting as a failure (``analysis._policy``)."""

    PASS = 0
    FAIL = 1
    NO_DATA = 2
    ERROR = 3
    INCONCLUSIVE = 4


class FailureKind(StrEnum):
    NO_DATA = "no_data"  # empty vector or NaN
    AMBIGUOUS = "ambiguous"  # several series where one value is expected
    REJECTED = "rejected"  # 4xx from the provider (bad query)
    TRANSPORT = "transport"  # connection error, 5xx after retries
    TIMEOUT = "timeout"
    RENDER = "render"  # template could not be rendered (missing variable, missing template)


class CheckKind(StrEnum):
    SUCCESS_RATE = "request-success-rate"  # builtin, percent
    DURATION = "request-duration"  # builtin, milliseconds
    QUERY = "query"  # inline (deprecated) query
    TEMPLATE = "template"  # MetricTemplate


@dataclass(frozen=True, slots=True)
class QueryFailure:
    kind: FailureKind
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where a ``MetricQuery`` goes: the provider, its address and how to reach it (headers,
    credentials, TLS, region). Equal endpoints hash alike, so queries can be grouped by it."""

    provider_type: str = "prometheus"
    server: str | None = None  # Prometheus address (template address, spec.metricsServer, default)
    # A template's headers may carry credentials (Authorization): kept out of the repr, so a
    # query or a check printed in a log or an error never shows them.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret: str | None = None  # "<namespace>/<name>" of the credentials Secret, if any
    insecure_skip_verify: bool = False
    region: str | None = None  # MetricTemplate spec.provider.region (cloudwatch)

    def __hash__(self) -> int:
        # ``headers`` is a dict, which does not hash: its sorted items stand for it (equal
        # mappings have equal sorted items, as the generated ``__eq__`` compares them).
        return hash(
            (
                self.provider_type,
                self.server,
                self.header_items,
                self.secret,
                self.insecure_skip_verify,
                self.region,
            )
        )

    @property
    def header_items(self) -> tuple[tuple[str, str], ...]:
        """The headers as sorted (name, value) pairs: hashable, and the same for equal headers."""
        return tuple(sorted(self.headers.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricQuery:
    """What one metric check asks for one canary on one tick: the query, where it goes
    (``endpoint``), the unit of its answer and the names its messages use. How the answer is
    judged is the ``Check``'s."""

    canary: str  # "<namespace>/<name>"
    metric: str  # the metric's name in analysis.metrics
    kind: CheckKind
    target: str = "canary"  # "canary" or "primary": which workload the query is about
    expr: str | None = None  # rendered query; None when rendering failed (see render_error)
    # Set when the check cannot run (template missing or unrenderable, nothing to query): the
    # complete Flagger event message, e.g. "Metric template lat.ns query render error: ...".
    render_error: str | None = None
    endpoint: Endpoint = field(default_factory=Endpoint)  # where the query goes
    #: The metric's ``interval`` in seconds: hosted providers size their query window from it
    #: (datadog, cloudwatch, dynatrace and splunk ask for 10 intervals, newrelic for one).
    window: float = 60.0
    scale: float = 1.0  # a querying source multiplies the raw result by this (seconds -> ms)
    observer: str = ""  # metrics provider name for event messages ("istio", "kubernetes", ...)
    template: str | None = None  # "<namespace>/<name>" of the MetricTemplate, if any
    # targetRef.name: Flagger's builtin no-data message names the workload, not the canary
    target_name: str = ""
    # The values substituted into a builtin request-success-rate / request-duration query (set by
    # plan_checks; None for inline queries and templates). A grouping source (analysis._grouping)
    # uses them to ask once for every canary whose query differs only in the target's identity.
    model: TemplateModel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One static check of a tick: what is asked (``query``: the query and where it goes) and how
    its answer is judged (Flagger's ``thresholdRange``). A comparative judge is not here: it reads
    series, and ``analysis._judged`` takes it from the metric's ``judge``."""

    query: MetricQuery
    lo: float | None = None  # inclusive lower bound (None: unbounded)
    hi: float | None = None  # inclusive upper bound (None: unbounded)
    #: Builtin request-duration answers are truncated to whole milliseconds first, as Flagger's
    #: observers convert them to a Go ``time.Duration``.
    truncate: bool = False
    #: The metric's ``dryRun`` and ``onNoData`` (README "Verdict policy"), from the very entry of
    #: ``analysis.metrics`` this check was planned from (two entries may share a name).
    dry_run: bool = False
    on_no_data: str = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    query: MetricQuery
    lo: float | None = None  # the bounds the answer was held to (the check's thresholdRange)
    hi: float | None = None
    value: float | None  # None for no data / error
    verdict: Verdict
    message: str  # Flagger's event message for a non-pass; "" on pass
    failure: QueryFailure | None = None
    #: A judged check's one-sentence reason with its numbers ("" for a static check).
    explanation: str = ""
    #: The metric is ``dryRun``: evaluated and shown, never counted.
    dry_run: bool = False
    #: The metric's ``onNoData``: what a NO_DATA verdict counts as ("fail", as in Flagger).
    on_no_data: str = "fail"

    @property
    def counted(self) -> Verdict:
        """What this check counts as for the run: PASS, FAIL or INCONCLUSIVE (README "Verdict
        policy"). Dry-run checks always count as PASS; no data follows ``onNoData``; an error
        is a failure, as in Flagger."""
        if self.dry_run or self.verdict is Verdict.PASS:
            return Verdict.PASS
        if self.verdict is Verdict.NO_DATA:
            return {"pass": Verdict.PASS, "inconclusive": Verdict.INCONCLUSIVE}.get(
                self.on_no_data, Verdict.FAIL
            )
        if self.verdict is Verdict.INCONCLUSIVE:
            return Verdict.INCONCLUSIVE
        return Verdict.FAIL

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def is_error(self) -> bool:
        """True when Flagger reports this outcome as an error (query, template or render failure)
        rather than a warning (threshold breach, no data). Both are Kubernetes Warning events."""
        return self.verdict is Verdict.ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.query.metric,
            "target": self.query.target,
            "value": self.value,
            "min": self.lo,
            "max": self.hi,
            "passed": self.passed,
            "verdict": self.verdict.name.lower(),
            **({"explanation": self.explanation} if self.explanation else {}),
            **({"dryRun": True} if self.dry_run else {}),
        }


class MetricSource(Protocol):
    """Answers a batch of metric queries at one instant. Never raises for a single query's failure:
    each answer is a float (NaN allowed, meaning no data) or a QueryFailure.

    Answers are in the unit the check compares: a source that runs the query multiplies the raw
    result by ``query.scale`` (builtin durations in seconds -> ms); recordings already hold that
    unit (request-duration in milliseconds, whatever the provider)."""

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRequest:
    """Ask for a query's samples over ``[start, end]`` every ``step`` seconds (clock time: Unix
    seconds live, virtual seconds in simulate, where 0 is the moment the revision was applied)."""

    query: MetricQuery
    start: float
    end: float
    step: float


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Samples of one query for one target, in time order; a NaN value is a step without data.
    Values are in the unit the check compares, like ``MetricSource.fetch`` answers."""

    times: NDArray[np.float64]
    values: NDArray[np.float64]

    @classmethod
    def empty(cls) -> Series:
        import numpy as np  # here, not at the top: ``validate`` imports this module, never numpy

        return cls(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.times.shape[0])


class SeriesSource(Protocol):
    """Answers a batch of range requests: a ``Series`` or a ``QueryFailure`` each, never raising
    for one request's failure. What a comparative judge reads (``analysis._judged``)."""

    async def fetch_series(
        self, requests: Sequence[SeriesRequest]
    ) -> list[Series | QueryFailure]: ...


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """Result of calling one webhook: ok means a 2xx answer (§12 Q2)."""

    hook: Webhook
    ok: bool
    message: str = ""


class WebhookCaller(Protocol):
    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome: ...
