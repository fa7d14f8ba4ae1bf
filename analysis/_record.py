"""Capture a recording from live metric providers (``canary-engine record``, interfaces.md §1–2).

For every metric of a Canary, the query ``plan_queries`` renders is run as a range query for the
canary target and again for the primary (``{{ target }}`` = ``<targetRef.name>-primary``), and the
answers are converted to the unit the check compares (``query.scale``: request-duration is
recorded in milliseconds, whatever the provider). Times are relative to the start of the range.

Sampling follows Prometheus' range-query grid (``start + k * step``): a step where the query has
no value is written as an explicit no-data sample, so ``simulate`` sees "no data" exactly where a
live check would have, instead of carrying an older sample forward for the 5-minute lookback. A
metric that has no value at all is left out, with a warning naming it. Several series at one
instant is an error naming their label sets (§12 Q13), as it would fail every live check.

Range queries go through prometheus-api-client's ``PrometheusConnect.custom_query_range`` (the only
module that imports it; synchronous — ``record`` is a batch command). It rounds the range to whole
seconds, so ``record`` does so first. Every query goes to the ``--prometheus`` address (a template's
in-cluster address is usually unreachable from where ``record`` runs), with the template's headers
and ``insecureSkipVerify``; credentials can ride in the URL (``https://user:password@host``).

Values: a recording never holds a non-finite value. ``NaN`` is no data, as everywhere. A ``+Inf``
or ``-Inf`` sample (or a number too large for a float, such as ``1e400``, or one that overflows
when scaled to milliseconds) is written as no data too, and ``record`` warns, naming the metric,
the target, the query and the times: a live check would have been an error there (a non-finite
answer is never a pass), which the recording cannot say, so the warning does. A sample that is not
a number at all (``true``, ``null``, ``"abc"``, a sample of the wrong shape, a result that is not
a matrix of series) fails the whole recording with ``QueryRejected`` naming the query and what came
back: a value made up from garbage would not be honest either.

Deadline: ``timeout`` (default 30 s) bounds each range query in total, retries included. The
client's own facility, urllib3's ``Timeout(total=...)`` through requests, bounds the connection and
each read; as urllib3 documents, it cannot bound a server that trickles its answer slowly, nor the
retries, so the request runs on a worker thread that ``record`` stops waiting for at the deadline
(``QueryTimeout``; the abandoned request ends on its own read timeout, its answer unused).

Other metric providers: a MetricTemplate of any provider whose module answers series
(``analysis.providers``) is recorded through that series path (``record_series``: the provider's
own address and request shapes, its credentials from the ``secrets`` the caller read from the
manifest files), and its samples are placed on the same grid: at each step, the newest sample at
or before it and less than one step old, else no data. ``--prometheus`` is needed only when a
check queries Prometheus.

Errors: ``config.SpecError`` for bad input (time range, unrenderable query, ambiguous answer) and
``MetricQueryError`` (``ProviderUnavailable``, ``QueryRejected``, ``QueryTimeout``) when Prometheus
is unreachable, rejects a query, answers garbage or not in time; both name the metric, the target
and the query.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from analysis._errors import (
    AmbiguousResult,
    MetricQueryError,
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
)
from analysis._numbers import parse_number_text
from analysis._plan import plan_queries
from analysis._recording import _parse_rfc3339
from analysis._text import header_secrets, redact, url_secrets
from analysis._types import FailureKind, MetricQuery, QueryFailure, Series, SeriesRequest
from analysis.providers import PROVIDERS, record_series
from config import Canary, MetricTemplate, Problem, SpecError, parse_duration, url_problem

#: Prometheus refuses range queries of more points than this per series.
MAX_POINTS = 11_000
#: Seconds each range query may take in total, retries included (see "Deadline").
DEFAULT_RECORD_TIMEOUT = 30.0
#: Times listed in a warning about non-finite samples before "and N more".
_SHOWN_TIMES = 5
_SERIES_EXPECTED = '{"metric": {...}, "values": [[<time>, "<value>"], ...]}'
_SAMPLE_EXPECTED = '[<time>, "<value>"]'
RECORDING_FORMATS = (".csv", ".json")

#: ``progress(done, total, what)`` after each range query.
Progress = Callable[[int, int, str], None]

_RELATIVE = re.compile(r"-\s*(.+)")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STATUS = re.compile(r"HTTP Status Code ([0-9]+) \((.*)\)\s*$", re.DOTALL)
_TARGETS: tuple[Literal["canary", "primary"], ...] = ("canary", "primary")


@dataclass(slots=True, kw_only=True)
class RecordResult:
    """What ``record`` captured: samples per (target, metric), in the Canary's metric order."""

    start: datetime
    end: datetime
    step: float
    series: dict[tuple[str, str], list[tuple[float, float | None]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    queries: int = 0  # range queries sent

    @property
    def samples(self) -> int:
        return sum(len(s) for s in self.series.values())


def parse_time(text: str, *, now: datetime) -> datetime:
    """``T`` of ``record``: RFC 3339, Unix seconds, ``now``, or a duration before now (``-15m``).

    Raise ValueError saying what is accepted. ``now`` is an aware UTC datetime from the caller's
    clock.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    relative = _RELATIVE.fullmatch(value)
    if relative is not None and not _NUMBER.fullmatch(value):
        try:
            return now - timedelta(seconds=parse_duration(relative.group(1)))
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    if _NUMBER.fullmatch(value):
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
            raise ValueError(f"{text!r} is not a plausible Unix time in seconds")
        return datetime.fromtimestamp(seconds, UTC)
    parsed = _parse_rfc3339(value)
    if parsed is None:
        raise ValueError(
            f"{text!r} is not a time: use RFC 3339 (2026-01-02T15:04:05Z), Unix seconds, "
            "now, or a duration before now such as -15m or -2h"
        )
    return parsed


def parse_step(text: str) -> float:
    """``--step``: a duration (``30s``, ``1m``) or a number of seconds; raise ValueError."""
    value = text.strip()
    seconds = float(value) if _NUMBER.fullmatch(value) else parse_duration(value)
    if not math.isfinite(seconds) or seconds < 0.001:
        raise ValueError(f"{text!r}: the step must be at least 1ms")
    return seconds


def record(
    prometheus: str,
    canary: Canary,
    templates: Mapping[tuple[str, str], MetricTemplate],
    *,
    provider: str,
    start: datetime,
    end: datetime,
    step: float,
    progress: Progress | None = None,
    timeout: float = DEFAULT_RECORD_TIMEOUT,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> RecordResult:
    """Run every metric's range queries for the canary and primary targets; see the module doc.

    ``secrets`` maps "<namespace>/<name>" to a Secret's decoded data (for non-Prometheus
    templates). Raise SpecError for bad input and MetricQueryError when a provider cannot answer.
    """
    start_s, end_s = _whole_seconds(start), _whole_seconds(end)
    _check_range(start_s, end_s, step)
    points = math.floor((end_s - start_s) / step + 1e-9) + 1
    result = RecordResult(
        start=datetime.fromtimestamp(start_s, UTC),
        end=datetime.fromtimestamp(end_s, UTC),
        step=step,
    )
    planned = [
        query
        for target in _TARGETS
        for query in plan_queries(
            canary, templates, provider=provider, default_server=prometheus, target=target
        )
    ]
    _check_planned(planned, templates, result.warnings)
    # One series per (target, metric): a name checked twice (builtin + inline query) is recorded
    # once, as simulate answers both from the same series.
    todo: list[MetricQuery] = []
    seen: set[tuple[str, str]] = set()
    for query in planned:
        key = (query.target, query.metric)
        if key in seen:
            if query.target == "canary":
                result.warnings.append(
                    f"metric {query.metric!r} has more than one query; only the first is recorded"
                )
            continue
        seen.add(key)
        todo.append(query)
    if not prometheus and any(q.endpoint.provider_type == "prometheus" for q in todo):
        names = sorted({q.metric for q in todo if q.endpoint.provider_type == "prometheus"})
        raise SpecError(
            Problem("--prometheus URL", f"is required: {', '.join(names)} query Prometheus")
        )
    bad = url_problem(prometheus, schemes=("http", "https")) if prometheus else None
    if bad is not None:  # (the client library raised ValueError on "http://[::1": a traceback)
        shown = redact(prometheus, url_secrets(prometheus))
        raise SpecError(Problem("--prometheus URL", f"{shown!r} is not a valid URL: {bad}"))
    others = _provider_series(
        [q for q in todo if q.endpoint.provider_type != "prometheus"],
        result,
        step,
        timeout,
        secrets,
    )

    connections: dict[tuple[Any, ...], Any] = {}
    try:
        for done, query in enumerate(todo, start=1):
            if query.endpoint.provider_type != "prometheus":
                values = _series_on_grid(others[id(query)], start_s, step, points)
                result.queries += 1
            else:
                values = _prometheus_values(
                    connections, query, prometheus, result, step, timeout, points
                )
            if values is None:
                if query.target == "canary":
                    result.warnings.append(
                        f"metric {query.metric!r}: the canary query returned no data between "
                        f"{_iso(result.start)} and {_iso(result.end)}; the recording has no "
                        "samples for it"
                    )
                else:
                    result.warnings.append(
                        f"metric {query.metric!r}: no data for the primary "
                        f"({canary.spec.target_ref.name}-primary); no primary samples recorded"
                    )
            else:
                result.series[(query.target, query.metric)] = [
                    (_relative(k, step), v) for k, v in enumerate(values)
                ]
            if progress is not None:
                progress(done, len(todo), f"{query.metric} ({query.target})")
    finally:
        for connection in connections.values():
            connection.close()
    return result


def _prometheus_values(
    connections: dict[tuple[Any, ...], Any],
    query: MetricQuery,
    prometheus: str,
    result: RecordResult,
    step: float,
    timeout: float,
    points: int,
) -> list[float | None] | None:
    connection = _connection(connections, prometheus, query, timeout)
    secrets = [*url_secrets(prometheus), *header_secrets(query.endpoint.headers.items())]
    start_s = _whole_seconds(result.start)
    try:
        rows = _range(connection, query, prometheus, result.start, result.end, step, timeout)
        result.queries += 1
        return _on_grid(rows, query, prometheus, start_s, step, points, result.warnings)
    except MetricQueryError as exc:
        # The address may carry user:password@ and the server may echo credentials.
        raise type(exc)(redact(str(exc), secrets)) from None


def _provider_series(
    queries: Sequence[MetricQuery],
    result: RecordResult,
    step: float,
    timeout: float,
    secrets: Mapping[str, Mapping[str, str]] | None,
) -> dict[int, Series]:
    """Every non-Prometheus query's samples over the range, by ``id(query)``; raise the failure
    of the first one that cannot be answered (a no-data answer is an empty series)."""
    if not queries:
        return {}
    start, end = result.start.timestamp(), result.end.timestamp()
    requests = [SeriesRequest(query=q, start=start, end=end, step=step) for q in queries]
    answers = record_series(requests, now=lambda: end, secrets=secrets, timeout=timeout)
    out: dict[int, Series] = {}
    for query, answer in zip(queries, answers, strict=True):
        if isinstance(answer, QueryFailure):
            if answer.kind is FailureKind.NO_DATA:
                answer = Series.empty()
            else:
                error = _FAILURE_ERRORS.get(answer.kind, QueryRejected)
                raise error(f"{_what(query)}: {answer.message}")
        out[id(query)] = answer
    return out


#: How a provider's failure is raised by ``record`` (exit status 4, or 2 for an ambiguous one).
_FAILURE_ERRORS: dict[FailureKind, type[MetricQueryError]] = {
    FailureKind.TIMEOUT: QueryTimeout,
    FailureKind.TRANSPORT: ProviderUnavailable,
    FailureKind.REJECTED: QueryRejected,
    FailureKind.RENDER: QueryRejected,
}


def _series_on_grid(
    series: Series, start: int, step: float, points: int
) -> list[float | None] | None:
    """At each grid time, the newest sample at or before it and less than one step old (a
    non-finite one is no data); None when no step has a value."""
    values: list[float | None] = []
    for k in range(points):
        moment = start + k * step
        index = int(np.searchsorted(series.times, moment + 1e-6, side="right")) - 1
        value: float | None = None
        if index >= 0 and moment - float(series.times[index]) < step:
            found = float(series.values[index])
            value = found if math.isfinite(found) else None
        values.append(value)
    return None if all(v is None for v in values) else values


def write_recording(path: str | Path, result: RecordResult) -> None:
    """Write the recording as CSV or JSON by extension (interfaces.md §2); raise SpecError."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in RECORDING_FORMATS:
        raise SpecError(
            Problem(
                "-o", f"unknown recording format {suffix or '(no extension)'!r}; use .csv or .json"
            ),
            source=str(path),
        )
    text = _csv(result) if suffix == ".csv" else _json(result)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            Problem("-o", f"cannot write the recording: {exc}"), source=str(path)
        ) from None


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


def _whole_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp())


def _check_range(start: int, end: int, step: float) -> None:
    if end <= start:
        raise SpecError(
            Problem(
                "--start/--end",
                f"the range is empty: --start ({_iso_s(start)}) must be before --end "
                f"({_iso_s(end)}) by at least one second",
            )
        )
    if step <= 0:
        raise SpecError(Problem("--step", "must be positive"))
    points = math.floor((end - start) / step + 1e-9) + 1
    if points > MAX_POINTS:
        least = math.ceil((end - start) / (MAX_POINTS - 1))
        raise SpecError(
            Problem(
                "--step",
                f"{points} points per series exceed Prometheus' limit of {MAX_POINTS}; use a "
                f"step of at least {least}s or a shorter range",
            )
        )


def _check_planned(
    planned: Sequence[MetricQuery],
    templates: Mapping[tuple[str, str], MetricTemplate],
    warnings: list[str],
) -> None:
    problems = [
        Problem(f"metric {q.metric}", q.render_error)
        for q in planned
        if q.render_error is not None and q.target == "canary"
    ]
    for q in planned:
        provider_type = q.endpoint.provider_type
        if q.render_error is not None or provider_type == "prometheus" or q.target != "canary":
            continue
        provider = PROVIDERS.get(provider_type)
        if provider is None or not provider.built:
            reason = provider.not_built if provider is not None else "unknown provider"
            problems.append(
                Problem(
                    f"metric {q.metric}",
                    f"MetricTemplate {q.template} has provider type {provider_type!r}, which "
                    f"is not built yet: {reason}",
                )
            )
        elif provider.series is None:
            problems.append(
                Problem(
                    f"metric {q.metric}",
                    f"MetricTemplate {q.template}: the {provider_type} provider cannot answer "
                    "series, so it cannot be recorded",
                )
            )
    if problems:
        raise SpecError(problems)
    for (namespace, name), template in templates.items():
        if template.spec.provider.type != "prometheus":
            continue  # read from the Secrets in the manifest files (see the module doc)
        if template.spec.provider.secret_ref is not None:
            warnings.append(
                f"MetricTemplate {namespace}/{name} uses credentials Secret "
                f"{template.spec.provider.secret_ref.name}, which record cannot read; put them "
                "in the --prometheus URL (https://user:password@host) if Prometheus needs them"
            )


def _connection(
    connections: dict[tuple[Any, ...], Any], url: str, query: MetricQuery, timeout: float
) -> Any:
    endpoint = query.endpoint
    # record asks the --prometheus URL, never the template's address, and reads no Secret: only
    # the headers and the TLS check tell connections apart
    key = (endpoint.header_items, endpoint.insecure_skip_verify)
    found = connections.get(key)
    if found is None:
        import requests
        from prometheus_api_client import PrometheusConnect  # ~70 ms of imports: only here
        from urllib3.util import Timeout
        from urllib3.util.retry import Retry

        retry = Retry(
            total=2,
            backoff_factor=0.5,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        session = requests.Session()
        session.verify = not endpoint.insecure_skip_verify
        # the live sources' rules (analysis._redirects, MAX_ANSWER_BYTES) through the session's
        # public response hook: requests would follow any redirect with the template's headers
        # and read any answer whole
        session.hooks["response"].append(_guard(dict(endpoint.headers)))
        found = PrometheusConnect(
            url=url.rstrip("/"),
            headers=dict(endpoint.headers) or None,
            disable_ssl=endpoint.insecure_skip_verify,
            retry=retry,
            # requests hands a urllib3 Timeout through: connecting and each read share the budget
            timeout=Timeout(total=timeout),
            session=session,
        )
        connections[key] = found
    return found


class _Refused(Exception):
    """An answer the session's guard would not take (a redirect elsewhere, too large)."""


def _guard(headers: Mapping[str, str]) -> Callable[..., Any]:
    from urllib.parse import urljoin, urlsplit

    from analysis._redirects import carried_headers
    from analysis.providers._base import MAX_ANSWER_BYTES

    carried = carried_headers(headers)  # the live sources' rule (analysis._redirects)

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def check(response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.is_redirect:
            here = origin(response.url)
            there = origin(urljoin(response.url, response.headers.get("location", "")))
            if carried and there != here:
                raise _Refused(
                    f"redirected from {here} to {there}, another origin; not followed, so the "
                    "template's headers stay with the address configured: set the address to "
                    "the final one"
                )
            return response
        body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        if len(body) > MAX_ANSWER_BYTES:
            response.close()
            raise _Refused(
                f"answered more than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB, far more than one "
                "metric's answer: narrow the query or the window"
            )
        if response.status_code == 200 and (error := _error_status(body)):
            response.close()
            raise _Refused(f"answered status error: {error}")
        response.raw = io.BytesIO(body)  # read once, within the bound; requests reads it from here
        return response

    return check


def _range(
    connection: Any,
    query: MetricQuery,
    url: str,
    start: datetime,
    end: datetime,
    step: float,
    timeout: float,
) -> list[Any]:
    """Run one range query within ``timeout`` seconds in total; translate the client's exceptions
    into MetricQueryErrors."""
    from prometheus_api_client.exceptions import PrometheusApiClientException

    what = _what(query)
    try:
        rows = _within(
            timeout,
            lambda: connection.custom_query_range(query.expr, start, end, _step_text(step)),
        )
    except _DeadlinePassed:
        raise QueryTimeout(f"{what}: prometheus {url} did not answer within {timeout:g}s") from None
    except _Refused as exc:
        raise QueryRejected(f"{what}: prometheus {url} {exc}") from None
    except RecursionError:
        raise ProviderUnavailable(
            f"{what}: prometheus {url} answered a body that is not usable JSON (nested too deep)"
        ) from None
    except ValueError as exc:  # includes requests' JSONDecodeError
        raise ProviderUnavailable(
            f"{what}: prometheus {url} answered with a body that is not Prometheus JSON: {exc}"
        ) from None
    except OSError as exc:  # requests' RequestException derives from IOError
        if any(cls.__name__ in ("Timeout", "ReadTimeout") for cls in type(exc).__mro__):
            raise QueryTimeout(f"{what}: prometheus {url} did not answer in time: {exc}") from None
        raise ProviderUnavailable(f"{what}: prometheus {url} unreachable: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ProviderUnavailable(
            f"{what}: prometheus {url} answered without data.result: {exc!r}"
        ) from None
    except PrometheusApiClientException as exc:
        raise _http_error(what, url, str(exc)) from None
    if not isinstance(rows, list):
        raise QueryRejected(
            f"{what}: prometheus {url} answered a result that is not a matrix: {_shown(rows)}"
        )
    return rows


#: Prometheus' error answers are a few hundred bytes; a success answer, which may be megabytes,
#: is not parsed twice to look for one.
_ERROR_ANSWER_BYTES = 64 * 1024


def _error_status(body: bytes) -> str | None:
    """``errorType: error`` of a ``{"status": "error"}`` answer sent with HTTP 200 (a proxy in
    front of Prometheus may), which prometheus-api-client would read as an empty result: a
    recording of no data instead of the error."""
    if len(body) > _ERROR_ANSWER_BYTES or b"error" not in body:
        return None
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the client's own parse says so
    if not isinstance(answer, dict) or answer.get("status") != "error":
        return None
    kind, error = answer.get("errorType"), answer.get("error")
    text = error if isinstance(error, str) else _shown(error)
    return f"{kind}: {text}" if isinstance(kind, str) and kind else text


class _DeadlinePassed(Exception):
    """The call of ``_within`` did not finish in time."""


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception, or _DeadlinePassed after ``seconds``.

    The call runs on a daemon thread, which is left to finish (or time out) on its own when the
    deadline passes: nothing can interrupt a blocking socket read from outside, and a daemon
    thread does not keep the process alive.
    """
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller (or dropped after the deadline)
            failure.append(exc)

    worker = threading.Thread(target=run, name="canary-engine-record-query", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _DeadlinePassed
    if failure:
        raise failure[0]
    return outcome[0]


def _http_error(what: str, url: str, message: str) -> MetricQueryError:
    found = _STATUS.match(message)
    if found is None:
        return ProviderUnavailable(f"{what}: prometheus {url}: {message}")
    status = int(found.group(1))
    detail = found.group(2)
    try:
        raw = ast.literal_eval(detail)
        # the body as text, never as a bytes repr (b'p\xc3\xa4\'ss'): a secret it echoes must
        # read as itself for the redaction to find it
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        detail = text.strip() or detail
        body = json.loads(text)
        if isinstance(body, dict) and body.get("error"):
            detail = str(body["error"])
    except (ValueError, SyntaxError, RecursionError):
        pass
    if status >= 500 or status == 429:
        return ProviderUnavailable(f"{what}: prometheus {url} answered HTTP {status}: {detail}")
    return QueryRejected(f"{what}: prometheus rejected the query (HTTP {status}): {detail}")


def _on_grid(
    rows: list[Any],
    query: MetricQuery,
    url: str,
    start: int,
    step: float,
    points: int,
    warnings: list[str],
) -> list[float | None] | None:
    """Place the answer on the range grid, one value (or None) per step; None without any value.

    NaN and ±Inf are None (no data); the infinite ones get a warning (see the module doc). Raise
    QueryRejected when the answer is not a matrix of numbers, SpecError when several series hold
    a value at one instant.
    """
    what = _what(query)
    grid: list[list[tuple[dict[str, str], float]]] = [[] for _ in range(points)]
    if not all(isinstance(row, dict) for row in rows):  # e.g. a scalar or string result
        raise _garbage(what, url, f"a result that is not a matrix: {_shown(rows)}")
    for row in rows:
        if not isinstance(row.get("metric") or {}, dict):
            raise _garbage(what, url, f"a malformed series {_shown(row)}", _SERIES_EXPECTED)
        labels = {str(k): str(v) for k, v in (row.get("metric") or {}).items()}
        if "values" not in row and "value" in row:  # a vector answers an instant, not a range
            raise _garbage(what, url, f"a result that is not a matrix: {_shown(rows)}")
        samples = row.get("values") or []
        if not isinstance(samples, list):
            raise _garbage(what, url, f"a malformed series {_shown(row)}", _SERIES_EXPECTED)
        for sample in samples:
            if not isinstance(sample, list) or len(sample) != 2:
                raise _garbage(what, url, f"a malformed sample {_shown(sample)}", _SAMPLE_EXPECTED)
            stamp, value = _sample_number(sample[0]), _sample_number(sample[1])
            if stamp is None or not math.isfinite(stamp):
                raise _garbage(what, url, f"a sample time that is not a number: {_shown(sample)}")
            if value is None:
                raise _garbage(what, url, f"a sample value that is not a number: {_shown(sample)}")
            offset = (stamp - start) / step  # finite stamps can still overflow it (1e308)
            k = round(offset) if math.isfinite(offset) else -1
            if 0 <= k < points:
                grid[k].append((labels, value))
    values: list[float | None] = []
    infinite: list[tuple[int, float]] = []
    for k, found in enumerate(grid):
        if len(found) > 1:
            ambiguous = AmbiguousResult([labels for labels, _ in found])
            raise SpecError(
                Problem(
                    f"metric {query.metric}",
                    f"the {query.target} query {query.expr!r} at {_relative(k, step)}s: "
                    f"{ambiguous}",
                )
            )
        value = found[0][1] * query.scale if found else math.nan
        if math.isinf(value):
            infinite.append((k, value))
        values.append(value if math.isfinite(value) else None)
    if infinite:
        warnings.append(_infinite_warning(what, infinite, start, step))
    if all(v is None for v in values):
        return None
    return values


def _sample_number(value: Any) -> float | None:
    """A JSON string or number as a float (Prometheus sends ``"12.5"``, ``"NaN"``, ``"+Inf"``);
    None for anything else — ``true`` is not 1. Too large for a float is infinite."""
    if type(value) not in (str, int, float):
        return None
    try:
        # as the live sources read it: "1_000" or "١٠٠" is no number to Prometheus' clients
        return parse_number_text(value) if isinstance(value, str) else float(value)
    except OverflowError:  # a JSON integer beyond float range
        return math.inf if value > 0 else -math.inf
    except ValueError:
        return None


def _garbage(what: str, url: str, got: str, expected: str = "") -> QueryRejected:
    where = f" where {expected} is expected" if expected else ""
    return QueryRejected(f"{what}: prometheus {url} answered {got}{where}")


def _shown(value: Any) -> str:
    """What came back, as short JSON, for an error message."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 100 else text[:99] + "…"


def _infinite_warning(
    what: str, infinite: Sequence[tuple[int, float]], start: int, step: float
) -> str:
    shown = ", ".join(
        f"{'+Inf' if value > 0 else '-Inf'} at {_number(_relative(k, step))}s "
        f"({_iso(datetime.fromtimestamp(start + k * step, UTC))})"
        for k, value in infinite[:_SHOWN_TIMES]
    )
    more = f" and {len(infinite) - _SHOWN_TIMES} more" if len(infinite) > _SHOWN_TIMES else ""
    return (
        f"{what} returned a non-finite value: {shown}{more}; recorded as no data (a live check "
        "fails with an error on a non-finite value)"
    )


def _what(query: MetricQuery) -> str:
    return f"metric {query.metric!r} ({query.target}) query {query.expr!r}"


def _relative(k: int, step: float) -> float:
    t = round(k * step, 6)
    return float(int(t)) if t.is_integer() else t


def _step_text(step: float) -> str:
    return str(int(step)) if float(step).is_integer() else f"{step:.3f}"


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _csv(result: RecordResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "target", "metric", "value"])
    rows = [
        (t, order, target, metric, value)
        for order, ((target, metric), samples) in enumerate(result.series.items())
        for t, value in samples
    ]
    rows.sort(key=lambda row: (row[0], row[1]))
    for t, _, target, metric, value in rows:
        writer.writerow([_number(t), target, metric, "" if value is None else _number(value)])
    return out.getvalue()


def _json(result: RecordResult) -> str:
    doc = {
        "version": 1,
        "series": [
            {
                "target": target,
                "metric": metric,
                "samples": [[_json_number(t), _json_number(v)] for t, v in samples],
            }
            for (target, metric), samples in result.series.items()
        ],
    }
    return json.dumps(doc, indent=1) + "\n"


def _json_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_s(seconds: int) -> str:
    return _iso(datetime.fromtimestamp(seconds, UTC))
