"""Fetch a tick's metric checks and judge them in one vectorised pass, with Flagger's messages.

``analyze`` scores one canary's checks; ``analyze_batches`` scores many canaries' checks together
(one fetch, one ``evaluate`` call over the concatenation) and splits the results back. Builtin
request-duration values (milliseconds, already scaled by the source) are truncated to whole
milliseconds first, as Flagger's observers do.

Every non-passing CheckResult carries the event message Flagger records for that outcome, built
from ``pkg/controller/scheduler_metrics.go``. Flagger stops at the first failing check of a tick;
we evaluate them all and leave "which ones count" to the engine (see ``first_failure``).

A non-finite or non-numeric answer is never a pass. NaN and an empty result are Flagger's "no
values found" (NO_DATA). A sample that is not a number (``true``, ``null``, ``"abc"``, a malformed
sample) is a ``QueryFailure`` from the source, an ERROR worded like any failed query
("Prometheus query failed for <metric>: ..."). ±Inf (including a number too large for a float,
or a value that overflows when scaled) is an ERROR too (``analysis._evaluate``), with the failure
"query returned a non-finite value +Inf" in the same wording: "Prometheus query failed:
running query failed: query returned a non-finite value +Inf" for a builtin check, "Prometheus
query failed for <metric>: ..." for an inline query, "Metric query failed for <metric>: ..." for
a template. Where Flagger has an outcome, its text is kept unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from analysis._builtins import BUILTIN_PROVIDERS, builtin_queries
from analysis._errors import AnalysisError
from analysis._evaluate import evaluate
from analysis._types import (
    Check,
    CheckKind,
    CheckResult,
    FailureKind,
    MetricQuery,
    MetricSource,
    QueryFailure,
    Verdict,
)
from config import format_go_duration

#: The text of Flagger's ErrNoValuesFound.
NO_VALUES = "no values found"


async def analyze(source: MetricSource, checks: Sequence[Check]) -> list[CheckResult]:
    """Fetch every check's query from ``source`` and judge the answers in one evaluate call;
    results in order."""
    answers = await source.fetch([check.query for check in checks])
    return score_checks(checks, answers)


async def analyze_batches(
    source: MetricSource, batches: Sequence[Sequence[Check]]
) -> list[list[CheckResult]]:
    """Judge several canaries' checks in one fetch and one evaluate call; one result list each."""
    flat = [check for batch in batches for check in batch]
    results = score_checks(flat, await source.fetch([check.query for check in flat]))
    out: list[list[CheckResult]] = []
    start = 0
    for batch in batches:
        out.append(results[start : start + len(batch)])
        start += len(batch)
    return out


def score_checks(
    checks: Sequence[Check], answers: Sequence[float | QueryFailure]
) -> list[CheckResult]:
    """Judge already-fetched answers (pure): truncate, evaluate once, attach messages."""
    if len(answers) != len(checks):
        raise AnalysisError(
            f"metric source answered {len(answers)} values for {len(checks)} queries"
        )
    queries = [check.query for check in checks]
    raw: list[float] = []
    failed: list[bool] = []
    failures: list[QueryFailure | None] = []
    for query, answer in zip(queries, answers, strict=True):
        if query.render_error is not None:
            raw.append(math.nan)
            failed.append(True)
            failures.append(
                answer
                if isinstance(answer, QueryFailure)
                else QueryFailure(FailureKind.RENDER, query.render_error)
            )
        elif isinstance(answer, QueryFailure):
            # An empty result is no data, not an error: it gets Flagger's "no values found".
            raw.append(math.nan)
            failed.append(answer.kind is not FailureKind.NO_DATA)
            failures.append(answer)
        elif type(answer) is float or _is_number(answer):
            raw.append(float(answer))
            failed.append(False)
            failures.append(None)
        else:  # a source bug, but never a crash and never a pass (bool would read as 0 / 1)
            raw.append(math.nan)
            failed.append(True)
            failures.append(
                QueryFailure(
                    FailureKind.REJECTED,
                    f"the metric source answered a value that is not a number: {answer!r:.100}",
                )
            )

    # Sources answer in the unit the check compares (a Prometheus source applies query.scale;
    # recordings are stored in that unit), so only Flagger's truncation is left to do here.
    values = np.array(raw, dtype=np.float64)
    truncate = np.array([c.truncate for c in checks], dtype=np.bool_)
    # Go's int64(float) conversion truncates toward zero; NaN and ±Inf pass through unchanged.
    np.trunc(values, out=values, where=truncate)
    lo = np.array([-math.inf if c.lo is None else c.lo for c in checks], dtype=np.float64)
    hi = np.array([math.inf if c.hi is None else c.hi for c in checks], dtype=np.float64)
    codes = evaluate(values, lo, hi, np.array(failed, dtype=np.bool_))

    results: list[CheckResult] = []
    for check, value, code, failure in zip(
        checks, values.tolist(), codes.tolist(), failures, strict=True
    ):
        verdict = Verdict(code)
        if verdict is Verdict.ERROR and failure is None:
            # evaluate's rule: a non-finite answer is never a pass (NaN is no data, ±Inf an error)
            failure = QueryFailure(FailureKind.REJECTED, _non_finite_message(value))
        shown = None if verdict in (Verdict.NO_DATA, Verdict.ERROR) else value
        results.append(
            CheckResult(
                query=check.query,
                lo=check.lo,
                hi=check.hi,
                value=shown,
                verdict=verdict,
                message=_message(check, value, verdict, failure),
                failure=failure,
                dry_run=check.dry_run,
                on_no_data=check.on_no_data,
            )
        )
    return results


def _is_number(answer: object) -> bool:
    return isinstance(answer, numbers.Real) and not isinstance(answer, bool)


def first_failure(results: Sequence[CheckResult]) -> CheckResult | None:
    """The check Flagger would have stopped at: the first non-passing one, in evaluation order.

    Flagger halts a tick's analysis at the first failing metric, records only its event and
    counts one failed check; the engine mirrors that with this result.
    """
    return next((r for r in results if not r.passed), None)


# ---------------------------------------------------------------------------------------------
# Flagger's event messages
# ---------------------------------------------------------------------------------------------


def _message(check: Check, value: float, verdict: Verdict, failure: QueryFailure | None) -> str:
    if verdict is Verdict.PASS:
        return ""
    if verdict is Verdict.FAIL:
        return _threshold_message(check, value)
    if verdict is Verdict.NO_DATA:
        return _no_data_message(check.query)
    return _error_message(check.query, failure)


def _threshold_message(check: Check, value: float) -> str:
    query = check.query
    namespace, name = _split(query.canary)
    below = check.lo is not None and value < check.lo
    sign, bound = ("<", check.lo) if below else (">", check.hi)
    assert bound is not None  # a FAIL always breaches a bound that is set
    halt = f"Halt {name}.{namespace} advancement"
    if query.kind is CheckKind.SUCCESS_RATE:
        return f"{halt} success rate {_go_fixed2(value)}% {sign} {_go_float(bound)}%"
    if query.kind is CheckKind.DURATION:
        return f"{halt} request duration {_go_ms(value)} {sign} {_go_ms(bound)}"
    return f"{halt} {query.metric} {_go_fixed2(value)} {sign} {_go_float(bound)}"


def _no_data_message(query: MetricQuery) -> str:
    namespace, _ = _split(query.canary)
    target = query.target_name or _split(query.canary)[1]
    if query.kind is CheckKind.SUCCESS_RATE:
        return (
            f"Halt advancement no values found for {query.observer} metric {query.metric} "
            f"probably {target}.{namespace} is not receiving traffic: "
            f"{_error_prefix(query)}{NO_VALUES}"
        )
    if query.kind is CheckKind.DURATION:
        return (
            f"Halt advancement no values found for {query.observer} metric {query.metric} "
            f"probably {target}.{namespace} is not receiving traffic"
        )
    if query.kind is CheckKind.QUERY:
        return f"Halt advancement no values found for metric: {query.metric}"
    return f"Halt advancement no values found for custom metric: {query.metric}: {NO_VALUES}"


def _error_message(query: MetricQuery, failure: QueryFailure | None) -> str:
    if query.render_error is not None:
        return query.render_error  # plan_checks wrote the complete event message
    detail = failure.message if failure is not None else "unknown error"
    if failure is not None and failure.kind is FailureKind.RENDER:
        if query.kind is CheckKind.TEMPLATE and query.template:
            namespace, name = _split(query.template)
            return f"Metric template {name}.{namespace} query render error: {detail}"
        return f"Metric query failed for {query.metric}: {detail}"
    if query.kind in (CheckKind.SUCCESS_RATE, CheckKind.DURATION):
        return f"Prometheus query failed: {_error_prefix(query)}{detail}"
    if query.kind is CheckKind.QUERY:
        return f"Prometheus query failed for {query.metric}: {detail}"
    return f"Metric query failed for {query.metric}: {detail}"


def _non_finite_message(value: float) -> str:
    """What a check says about an infinite answer ("query returned a non-finite value +Inf")."""
    return f"query returned a non-finite value {_go_float(value)}"


def _error_prefix(query: MetricQuery) -> str:
    # Flagger's observers wrap provider errors in "running query failed: ", except the generic
    # HTTP one (kubernetes, gatewayapi) in its success-rate call.
    if query.kind is CheckKind.SUCCESS_RATE and query.observer in BUILTIN_PROVIDERS:
        return builtin_queries(query.observer).success_rate_error_prefix
    return "running query failed: "


def _split(ref: str) -> tuple[str, str]:
    namespace, _, name = ref.partition("/")
    return (namespace, name) if name else ("", namespace)


def _go_fixed2(value: float) -> str:
    """Go's ``%.2f``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.2f}"


def _go_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits; exponent form below 1e-4 and from 1e6 on
    (strconv's 'g' with the shortest precision decides with precision 6: 1e6 prints "1e+06")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent += len(digit_tuple) - len(digits)  # account for the stripped zeros
    point = len(digits) + exponent  # decimal point position relative to the digit string
    x = point - 1
    out = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{out}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{out}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{out}{digits}{'0' * (point - len(digits))}"
    return f"{out}{digits[:point]}.{digits[point:]}"


def _go_ms(milliseconds: float) -> str:
    """A whole number of milliseconds as Go's ``time.Duration`` prints it ("212ms", "1.5s")."""
    if math.isnan(milliseconds):
        return "NaN"
    if math.isinf(milliseconds):
        # Go would overflow int64 here; say what the value was instead of a nonsense duration.
        return "+Inf" if milliseconds > 0 else "-Inf"
    return format_go_duration(math.trunc(milliseconds) / 1000.0)
