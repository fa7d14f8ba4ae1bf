"""One Prometheus request per query shape per interval, for all canaries: group, then scatter.

Many canaries due on the same tick ask the same builtin query of the same Prometheus, differing
only in the values substituted for the target's identity (namespace, workload, ingress). Instead of
one request per check, ``plan_requests`` sends one query per *shape* that aggregates ``by`` the
labels telling the targets apart, and ``answers_from_data`` scatters the returned vector back to
each canary's check. Shape = same server settings (address, headers, Secret, TLS), same builtin
template, same ``{{ interval }}``.

How a builtin template is grouped (``grouped_template``; done once per template, from the very text
``_builtins`` sends, so the two cannot drift apart):

* every identity matcher ``label="{{ f }}"`` / ``label=~"{{ f }}"`` becomes ``label=~"{{ f }}"`` and
  is rendered with the alternation ``(?:v1|v2|...)`` of the group's values, each value escaped for
  RE2 and the whole for the PromQL string by the helpers the per-canary builtin uses too
  (``analysis._render``: ``regex_escape``, ``quote_escape``). The per-canary query matches each
  value exactly as well (``="v"``, or ``=~"v"`` with ``v`` RE2-escaped), so both select the same
  series and no name can change either query's structure;
* every ``sum(...)`` becomes ``sum by (<identity labels>) (...)`` and every ``sum(...) by (le)``
  becomes ``sum(...) by (le, <identity labels>)``; the division and ``histogram_quantile`` then
  match series one-to-one per target, exactly as in the per-canary query;
* the kubernetes / gatewayapi / appmesh builtins select pods with
  ``kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"``; a pod name matches that for
  exactly one target, the name without its last two dash-separated segments, so the grouped query
  adds that name as a label with ``label_replace(..., "canary_engine_target", "$1",
  "kubernetes_pod_name", "(.+)-[0-9a-zA-Z]+-[0-9a-zA-Z]+")`` inside the ``sum``. The aggregation
  stays in Prometheus: the same series are summed in the same order, so the values are the
  per-canary ones bit for bit — and the P99 (``histogram_quantile`` over summed buckets) could not
  be reduced client-side from per-pod answers at all. Range queries are the exception: there
  Prometheus (checked with 2.42) hands ``label_replace``'s output to ``sum`` in no fixed order, so
  a grouped range answer of these families may differ from the per-canary one in the last bit
  (relative 1e-15; the other families stay bit for bit).

Range queries (``series_from_data``) are grouped the same way: the same grouped expression, sent
to ``/api/v1/query_range``, answers a matrix whose series are scattered back by the same labels.

Limits (such queries run one per canary, concurrently): MetricTemplates and inline queries
(arbitrary PromQL); the providers whose identity is embedded in a composite label (contour, gloo,
traefik, kuma, apisix, skipper); a target placed in a regex matcher by the builtin query whose name
holds regex metacharacters (``.`` is legal in a Deployment name: the per-canary query, escaped, is
sent); and a shape asked for only one target (the per-canary query is sent, byte-identical to
Flagger's for a name without ``.``).
Identical ungrouped queries on the same server are sent once.

Values (``answers_from_data``): a non-finite or non-numeric answer is never a pass. NaN and an
empty vector are no data (Flagger's "no values found"); ±Inf (``"+Inf"``, ``"1e400"``) is passed on
as the float it is, which the evaluator makes an error naming it; a sample value that is not a
number (``true``, ``null``, ``"abc"``, an object) or a sample / series / vector of the wrong shape
is a REJECTED ``QueryFailure`` naming what came back, never a crash and never a number
(``float(True)`` would be 1). Range answers (``series_from_data``) reject such samples too.

Pure: no I/O. Imports ``config`` through analysis siblings only.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis._builtins import BUILTIN_PROVIDERS, ResultIdentity, builtin_queries
from analysis._errors import AmbiguousResult, AnalysisError, NoValuesFound, RenderError
from analysis._numbers import all_plain_number_texts, parse_number_text
from analysis._render import alternation as alternation
from analysis._render import quote_escape as quote_escape
from analysis._render import regex_escape as regex_escape
from analysis._render import render_query
from analysis._template_model import TemplateModel
from analysis._text import clip
from analysis._types import CheckKind, Endpoint, FailureKind, MetricQuery, QueryFailure, Series

#: Label the grouped kubernetes-style queries add: the target a pod belongs to.
GROUP_TARGET_LABEL = "canary_engine_target"
#: A pod name ``<target>-<hash>-<hash>`` -> ``<target>`` (label_replace anchors it).
POD_TARGET_REGEX = "(.+)-[0-9a-zA-Z]+-[0-9a-zA-Z]+"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_.]+)\s*\}\}")
_STAND_IN = "canaryEngineGroupStandIn"


#: Observer family -> how its builtin answers name their target (the families that declare it).
_IDENTITIES: dict[str, ResultIdentity] = {
    queries.observer: queries.grouping
    for queries in map(builtin_queries, BUILTIN_PROVIDERS)
    if queries.grouping is not None
}

#: Metrics providers whose builtin queries are grouped.
GROUPED_PROVIDERS: tuple[str, ...] = tuple(
    p for p in BUILTIN_PROVIDERS if builtin_queries(p).grouping is not None
)


@dataclass(frozen=True, slots=True)
class GroupedTemplate:
    """A builtin template rewritten to answer for many targets at once."""

    text: str  # template text; identity placeholders sit in regex matchers
    fields: tuple[str, ...]  # model fields that identify a target, in key order
    labels: tuple[str, ...]  # the result labels carrying them, same order
    regex_fields: frozenset[str]  # fields the per-canary query places in a regex matcher


@dataclass(frozen=True, slots=True)
class Request:
    """One query to send (instant or range), and which of the fetch's queries it answers."""

    expr: str
    query: MetricQuery  # a member: the server settings (address, headers, Secret, TLS) to use
    members: tuple[int, ...]  # indexes into the fetch's query list
    # Grouped requests: the result labels identifying a target, and each member's values of them.
    labels: tuple[str, ...] = ()
    keys: tuple[tuple[str, ...], ...] = ()

    @property
    def grouped(self) -> bool:
        return bool(self.labels)


def server_key(query: MetricQuery) -> Endpoint:
    """Everything about how a query is sent, apart from its expression: its endpoint less what a
    Prometheus request does not read. Every query sent here is Prometheus' (its type is not told
    apart), a region is cloudwatch's, and no address is the same as an empty one."""
    endpoint = query.endpoint
    if endpoint.server and endpoint.region is None and endpoint.provider_type == "prometheus":
        return endpoint  # the usual case: nothing to leave out
    return replace(endpoint, provider_type="prometheus", server=endpoint.server or "", region=None)


def plan_requests(queries: Sequence[MetricQuery], *, group: bool = True) -> list[Request]:
    """Return the requests answering ``queries`` (those with an ``expr``), grouped where sound.

    Identical ungrouped expressions on the same server share one request. With ``group=False``
    every distinct query is sent as rendered (Flagger's one query per check).
    """
    shapes: dict[tuple[Any, ...], list[int]] = {}
    singles: dict[tuple[Any, ...], list[int]] = {}
    for index, query in enumerate(queries):
        if query.expr is None or query.render_error is not None:
            continue
        shape = _shape(query) if group else None
        if shape is not None:
            shapes.setdefault(shape, []).append(index)
        else:
            singles.setdefault((server_key(query), query.expr), []).append(index)

    requests: list[Request] = []
    for shape, members in shapes.items():
        grouped = _grouped_request(queries, members, shape[1])
        if grouped is not None:
            requests.append(grouped)
            continue
        for index in members:  # one target only (or unrenderable): send what Flagger sends
            expr = queries[index].expr
            assert expr is not None
            singles.setdefault((server_key(queries[index]), expr), []).append(index)
    for (_, expr), members in singles.items():
        requests.append(Request(expr=expr, query=queries[members[0]], members=tuple(members)))
    return requests


def answers_from_data(
    request: Request, queries: Sequence[MetricQuery], data: Mapping[str, Any]
) -> list[float | QueryFailure]:
    """Turn the ``data`` of a Prometheus instant-query answer into one answer per member.

    Values are multiplied by each member's ``scale``. Ungrouped: an empty vector or NaN is no
    data, several series are ambiguous (§12 Q13, naming the label sets), a range vector (matrix)
    is an error. Grouped: each member gets the series carrying its target's labels, no data when
    there is none. A sample that is not a number (``true``, ``null``, ``"abc"``, an object, a
    sample or series of the wrong shape) is a REJECTED failure naming what came back (for every
    member when the series cannot be attributed); ±Inf is answered as the float it is (the
    evaluator makes it an error). Never raises for a malformed ``data``.
    """
    result_type = data.get("resultType")
    result = data.get("result")
    count = len(request.members)
    if result_type == "matrix":
        failure = QueryFailure(
            FailureKind.AMBIGUOUS,
            "query returned a range vector (matrix) where one value is expected: drop the "
            "[range] selector or wrap it in a function such as rate() or avg_over_time()",
        )
        return [failure] * count
    if result_type == "scalar" and not request.grouped:
        scalar = _value_or_no_data(_sample_value(result))
        return [_scaled(scalar, queries[i]) for i in request.members]
    if result_type == "vector" and not isinstance(result, list):
        failure = _malformed(
            f"query returned a malformed vector {_shown(result)} where a list of series is expected"
        )
        return [failure] * count
    if result_type != "vector" or not isinstance(result, list):
        got = result_type if isinstance(result_type, str) else type(result).__name__
        failure = QueryFailure(
            FailureKind.REJECTED,
            f"query returned a {got} where an instant vector or scalar is expected",
        )
        return [failure] * count
    series: list[tuple[dict[str, str], _Sample]] = []
    for item in result:
        entry = _series(item)
        if isinstance(entry, QueryFailure):  # no labels to tell whose it is: nobody's answer
            return [entry] * count
        series.append(entry)
    if not request.grouped:
        one = _single(series)
        return [_scaled(one, queries[i]) for i in request.members]
    by_key: dict[tuple[str, ...], list[tuple[dict[str, str], _Sample]]] = {}
    for labels, value in series:
        key = tuple([labels.get(label, "") for label in request.labels])
        by_key.setdefault(key, []).append((labels, value))
    out: list[float | QueryFailure] = []
    for index, key in zip(request.members, request.keys, strict=True):
        found = by_key.get(key)
        if not found:
            out.append(NoValuesFound("no values found (empty result)").to_failure())
        elif len(found) > 1:
            out.append(AmbiguousResult([labels for labels, _ in found]).to_failure())
        else:
            out.append(_scaled(_value_or_no_data(found[0][1]), queries[index]))
    return out


def series_from_data(
    request: Request, queries: Sequence[MetricQuery], data: Mapping[str, Any]
) -> list[Series | QueryFailure]:
    """Turn the ``data`` of a Prometheus range-query answer into one ``Series`` per member.

    Values are multiplied by each member's ``scale``; ``NaN`` samples stay NaN and steps without a
    sample are simply absent. Ungrouped: an empty matrix is an empty series (no data: the judge
    decides). Grouped: each member gets the series carrying its target's labels, an empty one when
    there is none. Series of one member that never hold a sample at the same instant (series churn:
    a label changing during the window) are merged in time order, as an instant query at each step
    would see one series; two holding a sample at the same instant are ambiguous (§12 Q13, naming
    the label sets that collide). Any other result type is an error.
    """
    result_type = data.get("resultType")
    result = data.get("result")
    count = len(request.members)
    if result_type != "matrix" or not isinstance(result, list):
        got = result_type if isinstance(result_type, str) else type(result).__name__
        failure = QueryFailure(
            FailureKind.REJECTED,
            f"range query returned a {got} where a matrix (samples over time) is expected",
        )
        return [failure] * count
    rows: list[_Row] = []
    for item in result:
        row = _range_row(item)
        if row is None:
            failure = QueryFailure(
                FailureKind.REJECTED, "the answer holds a sample that is not a number"
            )
            return [failure] * count
        rows.append(row)
    if not request.grouped:
        one = _merged(rows)
        return [_scaled_series(one, queries[i]) for i in request.members]
    by_key: dict[tuple[str, ...], list[_Row]] = {}
    for row in rows:
        key = tuple([row[0].get(label, "") for label in request.labels])
        by_key.setdefault(key, []).append(row)
    return [
        _scaled_series(_merged(by_key.get(key, [])), queries[index])
        for index, key in zip(request.members, request.keys, strict=True)
    ]


@functools.cache
def grouped_template(template: str, family: str) -> GroupedTemplate:
    """Rewrite a builtin ``template`` of observer ``family`` to group by the target labels.

    Raise AnalysisError when the template does not have the expected structure (a guard against
    a builtin edited without this rewrite; tests run it over every grouped provider).
    """
    spec = _IDENTITIES[family]
    text = template
    fields: list[str] = []
    labels: list[str] = []
    regex_fields: set[str] = set()
    accounted: dict[str, int] = {}
    for field, label in spec.labels:
        pattern = re.compile(rf'\b{re.escape(label)}\s*(=~?)\s*"\{{\{{ {field} \}}\}}"')
        ops = [m.group(1) for m in pattern.finditer(text)]
        if not ops:
            raise AnalysisError(f"builtin {family} query has no {label} matcher: {template}")
        if "=~" in ops:
            regex_fields.add(field)
        text = pattern.sub(f'{label}=~"{{{{ {field} }}}}"', text)
        accounted[field] = len(ops)
        fields.append(field)
        labels.append(label)
    if spec.pod_label is not None:
        prefix = f'{spec.pod_label}=~"{{{{ target }}}}-'
        uses = text.count(prefix)
        if not uses:
            raise AnalysisError(f"builtin {family} query has no {spec.pod_label} matcher")
        accounted["target"] = uses
        regex_fields.add("target")
        fields.append("target")
        labels.append(GROUP_TARGET_LABEL)
    for name in set(_PLACEHOLDER.findall(text)) - {"interval"}:
        if _PLACEHOLDER.findall(text).count(name) != accounted.get(name, 0):
            raise AnalysisError(
                f"builtin {family} query uses {{{{ {name} }}}} outside its identity matchers"
            )
    text = _group_sums(text, tuple(labels), spec.pod_label, family)
    return GroupedTemplate(
        text=text, fields=tuple(fields), labels=tuple(labels), regex_fields=frozenset(regex_fields)
    )


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


def _shape(query: MetricQuery) -> tuple[Any, ...] | None:
    """The grouping key of a builtin query, or None when it cannot be grouped."""
    if query.model is None or query.endpoint.provider_type != "prometheus":
        return None
    found = _builtin_shape(query.observer, query.kind)
    if found is None:
        return None
    template, shape = found
    for field in shape.fields:
        value: str = getattr(query.model, field)
        if not value or (field in shape.regex_fields and not _literal(value)):
            return None
    return (server_key(query), template, query.model.interval)


@functools.cache
def _builtin_shape(
    observer: str, kind: CheckKind
) -> tuple[tuple[str, str], GroupedTemplate] | None:
    """((builtin template, family), its grouped form) when that builtin can be grouped."""
    if kind not in (CheckKind.SUCCESS_RATE, CheckKind.DURATION):
        return None
    if observer not in BUILTIN_PROVIDERS:
        return None
    builtins = builtin_queries(observer)
    family = builtins.observer
    if builtins.grouping is None:
        return None
    text = builtins.success_rate if kind is CheckKind.SUCCESS_RATE else builtins.duration
    try:
        return (text, family), grouped_template(text, family)
    except AnalysisError:
        return None


def _grouped_request(
    queries: Sequence[MetricQuery], members: list[int], template: tuple[str, str]
) -> Request | None:
    shape = grouped_template(*template)
    keys = tuple(tuple(_field(queries[i], f) for f in shape.fields) for i in members)
    if len(set(keys)) < 2:
        return None
    first = queries[members[0]]
    assert first.model is not None
    # Render with plain-token stand-ins (the interval is checked as usual), then put each escaped
    # alternation where its stand-in landed: grouped_template guarantees every identity
    # placeholder sits in a double-quoted matcher string. Escaping 10^4-character alternations
    # is then a str.translate instead of the renderer's per-character loop.
    model = TemplateModel(
        name="",
        namespace=_STAND_IN + "namespace",
        target=_STAND_IN + "target",
        service=_STAND_IN + "service",
        ingress=_STAND_IN + "ingress",
        route=_STAND_IN + "route",
        interval=first.model.interval,
    )
    try:
        expr = render_query(
            shape.text,
            model,
            source=f"grouped builtin {first.observer} query",
            escape_regex=True,  # as render_builtin; the stand-ins hold no metacharacter
        )
    except RenderError:
        return None  # e.g. an interval that is not a plain token: send the per-canary queries
    # one pass: a value substituted is never scanned again for the next field's stand-in
    values = {
        field: quote_escape(alternation([k[n] for k in keys]))
        for n, field in enumerate(shape.fields)
    }
    names = "|".join(re.escape(field) for field in values)
    expr = re.sub(f"{_STAND_IN}({names})", lambda m: values[m.group(1)], expr)
    return Request(expr=expr, query=first, members=tuple(members), labels=shape.labels, keys=keys)


def _field(query: MetricQuery, field: str) -> str:
    assert query.model is not None
    value: str = getattr(query.model, field)
    return value


def _literal(value: str) -> bool:
    return regex_escape(value) == value


def _group_sums(text: str, labels: tuple[str, ...], pod_label: str | None, family: str) -> str:
    """Make every ``sum(...)`` aggregate by ``labels`` (see the module docstring)."""
    by = ", ".join(labels)
    sums = _sum_spans(text)
    if not sums:
        raise AnalysisError(f"builtin {family} query has no sum(...) to group")
    _check_selectors_inside(text, sums, family)
    out: list[str] = []
    pos = 0
    for start, open_paren, close_paren in sums:
        inner = text[open_paren + 1 : close_paren]
        if pod_label is not None:
            inner = (
                f" label_replace({inner}, "
                f'"{GROUP_TARGET_LABEL}", "$1", "{pod_label}", "{POD_TARGET_REGEX}" ) '
            )
        after = text[close_paren + 1 :]
        clause = re.match(r"\s*by\s*\(\s*le\s*\)", after)
        out.append(text[pos:start])
        if clause is not None:
            out.append(f"sum({inner}) by (le, {by})")
            pos = close_paren + 1 + clause.end()
        else:
            out.append(f"sum by ({by}) ({inner})")
            pos = close_paren + 1
    out.append(text[pos:])
    return "".join(out)


def _sum_spans(text: str) -> list[tuple[int, int, int]]:
    """(start of ``sum``, its ``(``, the matching ``)``) of every top-level-or-nested sum call.

    Nested sums are not expected in builtins and are rejected; parentheses inside string
    literals are skipped.
    """
    spans: list[tuple[int, int, int]] = []
    code = _code_mask(text)
    for match in re.finditer(r"\bsum\s*\(", text):
        start = match.start()
        if not code[start]:
            continue
        open_paren = match.end() - 1
        depth = 0
        for pos in range(open_paren, len(text)):
            if not code[pos]:
                continue
            if text[pos] == "(":
                depth += 1
            elif text[pos] == ")":
                depth -= 1
                if depth == 0:
                    spans.append((start, open_paren, pos))
                    break
        else:
            raise AnalysisError(f"unbalanced parentheses in {text!r}")
    for (_, _, end), (start, _, _) in itertools.pairwise(spans):
        if start < end:
            raise AnalysisError(f"nested sum(...) in {text!r}")
    return spans


def _check_selectors_inside(text: str, sums: list[tuple[int, int, int]], family: str) -> None:
    code = _code_mask(text)
    for pos, ch in enumerate(text):
        if ch == "{" and code[pos] and not text.startswith("{{", pos) and text[pos - 1] != "{":
            if not any(open_paren < pos < close for _, open_paren, close in sums):
                raise AnalysisError(f"builtin {family} query has a selector outside sum(...)")


def _code_mask(text: str) -> list[bool]:
    """True for each character of ``text`` outside a PromQL string literal."""
    mask: list[bool] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is None:
            mask.append(ch not in "\"'`")
            if ch in "\"'`":
                quote = ch
            continue
        mask.append(False)
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "`":
            escaped = True
        elif ch == quote:
            quote = None
    return mask


_Sample = float | QueryFailure  # a series' value, or why the answer holds no number there
_SAMPLE_EXPECTED = '[<time>, "<value>"]'
#: JSON types a sample value may have: Prometheus sends a string; a plain number is accepted too.
_VALUE_TYPES = frozenset({str, int, float})


def _series(item: Any) -> tuple[dict[str, str], _Sample] | QueryFailure:
    """(labels, value) of one instant-vector entry, or why the entry is not a series at all."""
    if not isinstance(item, dict):
        return _malformed(
            f"query returned a malformed series {_shown(item)} where an object with "
            f'"metric" and "value" is expected'
        )
    labels = item.get("metric")
    if labels is not None and not isinstance(labels, dict):
        return _malformed(f"query returned series labels {_shown(labels)} that are not an object")
    names = {str(k): str(v) for k, v in labels.items()} if labels else {}
    return names, _sample_value(item.get("value"))


def _sample_value(sample: Any) -> _Sample:
    """The float of a ``[time, "value"]`` pair, or a failure naming what came back instead.

    The value is parsed as Prometheus formats it (``"12.5"``, ``"NaN"``, ``"+Inf"``; a string too
    large for a float is infinite). Anything else — ``true``, ``null``, ``"abc"``, an object, a
    sample of the wrong shape — is never read as a number (``float(True)`` would be 1).
    """
    if not isinstance(sample, list) or len(sample) != 2:
        return _malformed(
            f"query returned a malformed sample {_shown(sample)} where {_SAMPLE_EXPECTED} "
            "is expected"
        )
    value = sample[1]
    if type(value) in _VALUE_TYPES:
        try:
            return parse_number_text(value) if isinstance(value, str) else float(value)
        except (ValueError, OverflowError):  # a JSON integer beyond float range overflows
            if isinstance(value, int):
                return math.inf if value > 0 else -math.inf
    return _malformed(f"query returned a sample value that is not a number: {_shown(value)}")


def _malformed(message: str) -> QueryFailure:
    return QueryFailure(FailureKind.REJECTED, message)


def _shown(value: Any) -> str:
    """What came back, as JSON (short): the failure names it."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, 80)


def _single(series: list[tuple[dict[str, str], _Sample]]) -> float | QueryFailure:
    if not series:
        return NoValuesFound("no values found (empty result)").to_failure()
    if len(series) > 1:
        return AmbiguousResult([labels for labels, _ in series]).to_failure()
    return _value_or_no_data(series[0][1])


def _value_or_no_data(value: _Sample) -> float | QueryFailure:
    """NaN is no data (Flagger's "no values found"); ±Inf stays a value, which the evaluator
    turns into an error (a non-finite answer is never a pass)."""
    if isinstance(value, QueryFailure):
        return value
    if math.isnan(value):
        return NoValuesFound("no values found (the query returned NaN)").to_failure()
    return value


def _scaled(answer: float | QueryFailure, query: MetricQuery) -> float | QueryFailure:
    if isinstance(answer, QueryFailure):
        return answer
    return answer * query.scale if query.scale != 1.0 else answer


_Row = tuple[dict[str, str], NDArray[np.float64], NDArray[np.float64]]  # labels, times, values


def _range_row(item: Any) -> _Row | None:
    """(labels, times, values) of one matrix entry; None when a sample is not a number."""
    labels = item.get("metric") if isinstance(item, dict) else None
    samples = item.get("values") if isinstance(item, dict) else None
    names = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    if not samples:  # e.g. a native-histogram series ("histograms" only): no float samples
        return names, np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64)
    if not isinstance(samples, list):
        return None
    try:
        # numpy parses Prometheus' strings, "NaN" and "+Inf" included ...
        times = np.array([sample[0] for sample in samples], dtype=np.float64)
        raw = [sample[1] for sample in samples]
        # ... but also reads true as 1 and null as NaN: only strings and numbers are values, and
        # a sample is exactly [time, value]
        if not set(map(type, raw)) <= _VALUE_TYPES or set(map(len, samples)) != {2}:
            return None
        # ... and reads "1_000" or " 5" as Python does, where Prometheus' clients would not
        if not all_plain_number_texts(v for v in raw if type(v) is str):
            return None
        values = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):
        return None
    if times.ndim != 1 or values.shape != times.shape or not np.isfinite(times).all():
        return None
    if times.size > 1 and not bool((times[1:] > times[:-1]).all()):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    return names, times, values


def _merged(rows: Sequence[_Row]) -> Series | QueryFailure:
    """One series from the rows answering one member (see ``series_from_data``)."""
    if not rows:
        return Series.empty()
    if len(rows) == 1:
        return Series(rows[0][1], rows[0][2])
    times = np.concatenate([row[1] for row in rows])
    values = np.concatenate([row[2] for row in rows])
    owners = np.repeat(np.arange(len(rows)), [row[1].size for row in rows])
    order = np.argsort(times, kind="stable")
    times, values, owners = times[order], values[order], owners[order]
    same = np.flatnonzero(times[1:] == times[:-1])
    if same.size:
        involved = sorted({int(i) for i in owners[same]} | {int(i) for i in owners[same + 1]})
        return AmbiguousResult([rows[i][0] for i in involved]).to_failure()
    return Series(times, values)


def _scaled_series(answer: Series | QueryFailure, query: MetricQuery) -> Series | QueryFailure:
    """A member's own copy of the series, in the unit its check compares."""
    if isinstance(answer, QueryFailure):
        return answer
    values = answer.values * query.scale if query.scale != 1.0 else answer.values.copy()
    return Series(answer.times.copy(), values)
