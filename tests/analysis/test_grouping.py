"""Grouping builtin queries of many canaries into one query per shape (analysis._grouping), pure.

The rewrite is checked on every grouped provider's builtins, against golden strings for Istio and
the kubernetes observer, and with crafted names: whatever the namespace or target is called, the
grouped expression keeps its structure and its matchers select exactly the given names.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import (
    GROUPED_PROVIDERS,
    CheckKind,
    Endpoint,
    FailureKind,
    MetricQuery,
    QueryFailure,
    TemplateModel,
    builtin_queries,
)
from analysis._grouping import (
    GROUP_TARGET_LABEL,
    Request,
    alternation,
    answers_from_data,
    grouped_template,
    plan_requests,
    quote_escape,
    regex_escape,
)
from analysis._render import _escape_quoted, _Lexer

PROM = "http://prom:9090"


def builtin(
    namespace: str,
    target: str,
    *,
    provider: str = "istio",
    kind: CheckKind = CheckKind.SUCCESS_RATE,
    interval: str = "1m",
    server: str = PROM,
) -> MetricQuery:
    model = TemplateModel(
        name=target,
        namespace=namespace,
        target=target,
        service=target,
        ingress=target,
        route=target,
        interval=interval,
    )
    queries = builtin_queries(provider)
    return MetricQuery(
        canary=f"{namespace}/{target}",
        metric=str(kind),
        kind=kind,
        expr=f"<per-canary {namespace}/{target}>",
        endpoint=Endpoint(server=server),
        observer=provider,
        model=model,
        scale=queries.duration_scale if kind is CheckKind.DURATION else 1.0,
    )


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": labels, "value": [1.0, value]} for labels, value in series],
    }


@pytest.mark.parametrize("provider", GROUPED_PROVIDERS)
@pytest.mark.parametrize("kind", [CheckKind.SUCCESS_RATE, CheckKind.DURATION])
def test_every_grouped_builtin_rewrites(provider: str, kind: CheckKind) -> None:
    queries = builtin_queries(provider)
    text = queries.success_rate if kind is CheckKind.SUCCESS_RATE else queries.duration
    shape = grouped_template(text, queries.observer)
    placeholders = set(re.findall(r"\{\{ (\w+) \}\}", shape.text))
    assert placeholders == {*shape.fields, "interval"}
    # every aggregation of the builtin now groups by the identity labels
    assert shape.text.count(f"{', '.join(shape.labels)})") == text.count("sum(")
    for field, label in zip(shape.fields, shape.labels, strict=True):
        if label != GROUP_TARGET_LABEL:
            assert f'{label}=~"{{{{ {field} }}}}"' in shape.text


def test_istio_golden() -> None:
    requests = plan_requests([builtin("prod", "api"), builtin("staging", "web")])
    [request] = requests
    assert request.expr == (
        " sum by (destination_workload_namespace, destination_workload) ( rate( "
        'istio_requests_total{ reporter="destination", '
        'destination_workload_namespace=~"(?:prod|staging)", destination_workload=~"(?:api|web)", '
        'response_code!~"5.*" }[1m] ) ) / sum by (destination_workload_namespace, '
        'destination_workload) ( rate( istio_requests_total{ reporter="destination", '
        'destination_workload_namespace=~"(?:prod|staging)", destination_workload=~"(?:api|web)" '
        "}[1m] ) ) * 100"
    )
    assert request.labels == ("destination_workload_namespace", "destination_workload")
    assert request.keys == (("prod", "api"), ("staging", "web"))


def test_a_value_holding_a_stand_in_is_not_rewritten_again() -> None:
    # the stand-ins were replaced one after another, so a namespace holding the next field's
    # stand-in text was rewritten by it and that canary dropped out of the grouped query
    requests = plan_requests(
        [builtin("canaryEngineGroupStandIntarget", "api"), builtin("e2e", "web")]
    )
    [request] = requests
    assert 'destination_workload_namespace=~"(?:canaryEngineGroupStandIntarget|e2e)"' in (
        request.expr
    )
    assert 'destination_workload=~"(?:api|web)"' in request.expr


def test_kubernetes_duration_golden() -> None:
    queries = [
        builtin("prod", name, provider="kubernetes", kind=CheckKind.DURATION)
        for name in ("api", "web")
    ]
    [request] = plan_requests(queries)
    assert request.expr == (
        " histogram_quantile( 0.99, sum( label_replace( rate( http_request_duration_seconds_bucket{"
        ' kubernetes_namespace=~"(?:prod)", kubernetes_pod_name=~"(?:api|web)-[0-9a-zA-Z]+'
        '(-[0-9a-zA-Z]+)" }[1m] ) , "canary_engine_target", "$1", "kubernetes_pod_name", '
        '"(.+)-[0-9a-zA-Z]+-[0-9a-zA-Z]+" ) ) by (le, kubernetes_namespace, canary_engine_target) )'
    )
    assert request.labels == ("kubernetes_namespace", GROUP_TARGET_LABEL)


def test_the_pod_regex_gives_exactly_one_target_per_pod() -> None:
    """A pod matches ``<t>-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`` for exactly the t label_replace finds."""
    extract = re.compile(r"(.+)-[0-9a-zA-Z]+-[0-9a-zA-Z]+")
    targets = ["api", "api-v2", "api-v2-canary", "web"]
    pods = [
        "api-7d9f8b6c5-x2x4z",
        "api-v2-7d9f8b6c5-x2x4z",
        "api-v2-canary-5f6d7c8b9-abcde",
        "api-primary-5f6d7c8b9-abcde",
        "web-0",
        "web-1-2-3",
    ]
    for pod in pods:
        matching = [t for t in targets if re.fullmatch(rf"{t}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", pod)]
        found = extract.fullmatch(pod)
        extracted = found.group(1) if found else None
        assert len(matching) <= 1
        if matching:
            assert extracted == matching[0]


def test_what_is_not_grouped() -> None:
    single = builtin("prod", "api", interval="2m")  # alone in its shape
    dotted = [builtin("prod", "my.app"), builtin("prod", "other")]
    contour = [builtin("prod", n, provider="contour") for n in ("a", "b")]
    template = MetricQuery(
        canary="prod/a",
        metric="t",
        kind=CheckKind.TEMPLATE,
        expr="x",
        endpoint=Endpoint(server=PROM),
    )
    template_b = MetricQuery(
        canary="prod/b",
        metric="t",
        kind=CheckKind.TEMPLATE,
        expr="y",
        endpoint=Endpoint(server=PROM),
    )
    requests = plan_requests([single, *dotted, *contour, template, template_b])
    assert not any(r.grouped for r in requests)
    assert len(requests) == 1 + 2 + 2 + 2
    assert not any(
        r.grouped for r in plan_requests([builtin("prod", "a"), builtin("prod", "b")], group=False)
    )


def test_shapes_split_by_server_interval_and_kind() -> None:
    queries = [
        builtin("p", "a"),
        builtin("p", "b"),
        builtin("p", "c", interval="5m"),
        builtin("p", "d", interval="5m"),
        builtin("p", "e", server="http://other"),
        builtin("p", "f", server="http://other"),
        builtin("p", "g", kind=CheckKind.DURATION),
        builtin("p", "h", kind=CheckKind.DURATION),
    ]
    requests = plan_requests(queries)
    assert sorted(r.members for r in requests) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert all(r.grouped for r in requests)


def test_one_request_per_prometheus_endpoint_as_it_is_sent() -> None:
    # A query goes out once per server, headers (in any order), Secret and TLS check; a region
    # (cloudwatch's) is not sent to Prometheus, so it does not make a request of its own.
    def ask(**endpoint: Any) -> MetricQuery:
        fields = {"server": PROM, **endpoint}
        return MetricQuery(
            canary="a/b", metric="m", kind=CheckKind.QUERY, expr="x", endpoint=Endpoint(**fields)
        )

    queries = [
        ask(headers={"A": "1", "B": "2"}),
        ask(headers={"B": "2", "A": "1"}),
        ask(headers={"A": "1", "B": "2"}, region="eu-west-1"),
        ask(),
        ask(secret="test/prom-auth"),
        ask(insecure_skip_verify=True),
        ask(server="http://other"),
    ]
    requests = plan_requests(queries)
    assert sorted(r.members for r in requests) == [(0, 1, 2), (3,), (4,), (5,), (6,)]


def test_scatter_no_data_nan_ambiguous_and_scale() -> None:
    queries = [
        builtin("p", name, provider="kubernetes", kind=CheckKind.DURATION)
        for name in ("a", "b", "c", "d")
    ]
    [request] = plan_requests(queries)
    data = vector(
        ({"kubernetes_namespace": "p", GROUP_TARGET_LABEL: "a"}, "0.25"),
        ({"kubernetes_namespace": "p", GROUP_TARGET_LABEL: "b"}, "NaN"),
        ({"kubernetes_namespace": "p", GROUP_TARGET_LABEL: "d", "x": "1"}, "1"),
        ({"kubernetes_namespace": "p", GROUP_TARGET_LABEL: "d", "x": "2"}, "2"),
        ({"kubernetes_namespace": "q", GROUP_TARGET_LABEL: "a"}, "9"),
    )
    answers = answers_from_data(request, queries, data)
    assert answers[0] == 250.0
    assert isinstance(answers[1], QueryFailure) and answers[1].kind is FailureKind.NO_DATA
    assert isinstance(answers[2], QueryFailure) and answers[2].kind is FailureKind.NO_DATA
    assert isinstance(answers[3], QueryFailure) and answers[3].kind is FailureKind.AMBIGUOUS


def test_unexpected_result_types() -> None:
    query = MetricQuery(
        canary="a/b", metric="m", kind=CheckKind.QUERY, expr="x", endpoint=Endpoint(server=PROM)
    )
    request = Request(expr="x", query=query, members=(0,))
    string = answers_from_data(request, [query], {"resultType": "string", "result": [1, "a"]})
    assert isinstance(string[0], QueryFailure) and string[0].kind is FailureKind.REJECTED
    assert "a string where an instant vector or scalar is expected" in string[0].message
    scalar = answers_from_data(request, [query], {"resultType": "scalar", "result": [1, "NaN"]})
    assert isinstance(scalar[0], QueryFailure) and scalar[0].kind is FailureKind.NO_DATA


# ---------------------------------------------------------------------------------------------
# Crafted names cannot change the grouped query's structure
# ---------------------------------------------------------------------------------------------

_GO_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def strings_and_code(expr: str) -> tuple[list[str], str]:
    """Split a PromQL expression into decoded double-quoted strings and the code around them."""
    strings: list[str] = []
    code: list[str] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch != '"':
            code.append(ch)
            i += 1
            continue
        code.append('"S"')
        out: list[str] = []
        i += 1
        while expr[i] != '"':
            if expr[i] == "\\":
                nxt = expr[i + 1]
                if nxt == "x":
                    out.append(chr(int(expr[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                out.append(_GO_ESCAPES[nxt])
                i += 2
                continue
            out.append(expr[i])
            i += 1
        strings.append("".join(out))
        i += 1
    return strings, "".join(code)


def _python_regex(re2: str) -> re.Pattern[str]:
    # Our escaping only puts a backslash before RE2 metacharacters, which Python reads the same.
    return re.compile(re2, re.DOTALL)


names = st.text(min_size=1, max_size=12)
literal_targets = st.text(
    alphabet=st.characters(blacklist_characters="\\.+*?()|[]{}^$", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(
    namespaces=st.lists(names, min_size=2, max_size=4, unique=True),
    targets=st.lists(literal_targets, min_size=2, max_size=4, unique=True),
    provider=st.sampled_from(["istio", "kubernetes", "nginx", "osm"]),
)
def test_crafted_names_cannot_break_the_grouped_query(
    namespaces: list[str], targets: list[str], provider: str
) -> None:
    queries = [
        builtin(ns, target, provider=provider, kind=kind)
        for ns, target in zip(namespaces, targets, strict=False)
        for kind in (CheckKind.SUCCESS_RATE, CheckKind.DURATION)
    ]
    plain = [
        builtin(f"ns{i}", f"t{i}", provider=provider, kind=q.kind) for i, q in enumerate(queries)
    ]
    crafted = sorted(plan_requests(queries), key=lambda r: str(r.query.kind))
    reference = sorted(plan_requests(plain), key=lambda r: str(r.query.kind))
    assert len(crafted) == len(reference) == 2 and all(r.grouped for r in crafted)
    for request, ref in zip(crafted, reference, strict=True):
        lexer = _Lexer()
        lexer.feed(request.expr)
        assert lexer.context is None and not lexer.pending_escape  # no string left open
        strings, code = strings_and_code(request.expr)
        ref_strings, ref_code = strings_and_code(ref.expr)
        assert code == ref_code  # the structure outside string literals is untouched
        assert len(strings) == len(ref_strings)
        used_ns = sorted({q.model.namespace for q in queries if q.model})
        used_targets = sorted({q.model.target for q in queries if q.model})
        ns_matcher = alternation(used_ns)
        assert ns_matcher in strings
        pattern = _python_regex(ns_matcher)
        for ns in used_ns:
            assert pattern.fullmatch(ns)
        assert not pattern.fullmatch("".join(used_ns) + "x")
        target_strings = [s for s in strings if s.startswith(alternation(used_targets))]
        assert target_strings


@given(st.text(max_size=20))
def test_regex_escape_matches_only_the_value(value: str) -> None:
    escaped = regex_escape(value)
    assert _python_regex(escaped).fullmatch(value)
    assert _python_regex(f"(?:{escaped})").fullmatch(value)
    if value:
        assert not _python_regex(escaped).fullmatch(value + value[-1])


@given(st.text(max_size=40))
def test_quote_escape_is_the_renderers_escaping(value: str) -> None:
    assert quote_escape(value) == _escape_quoted(value, '"')
