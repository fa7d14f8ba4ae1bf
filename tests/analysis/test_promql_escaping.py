"""Values in builtin queries are escaped for the matcher they land in (issue 10, PromQL).

Inside ``=~"..."`` / ``!~"..."`` a value is escaped for RE2 and then for the string, so the
Deployment ``secret.app`` selects its own series and not ``secret-app``'s (Flagger does not escape:
``.`` is a wildcard there, and the builtin queries ``sum`` whatever they select). Inside
``="..."`` / ``!="..."`` only the string escaping applies. A name of ``[a-z0-9-]`` renders exactly
as Flagger renders it (a plain Go-template substitution), and the grouped queries escape with the
same helpers, selecting exactly what the per-canary queries select.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import (
    BUILTIN_PROVIDERS,
    GROUPED_PROVIDERS,
    CheckKind,
    Endpoint,
    MetricQuery,
    TemplateModel,
    builtin_queries,
    plan_queries,
    render_query,
)
from analysis._builtins import render_builtin
from analysis._grouping import alternation, plan_requests, quote_escape, regex_escape
from analysis._render import _Lexer
from config import parse_canary

PROM = "http://prom:9090"
KINDS = (CheckKind.SUCCESS_RATE, CheckKind.DURATION)
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
# label, operator, the string's body (escapes kept); builtins only use double-quoted strings
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GO_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}


def model(value: str, *, namespace: str = "prod", interval: str = "1m") -> TemplateModel:
    return TemplateModel(
        name=value,
        namespace=namespace,
        target=value,
        service=value,
        ingress=value,
        route=value,
        interval=interval,
    )


def text_of(provider: str, kind: CheckKind) -> str:
    queries = builtin_queries(provider)
    return queries.success_rate if kind is CheckKind.SUCCESS_RATE else queries.duration


def flagger_render(template: str, values: TemplateModel) -> str:
    """What Flagger's Go template sends: every placeholder replaced by its value, verbatim."""
    return _PLACEHOLDER.sub(lambda m: str(getattr(values, m.group(1))), template)


def decode(body: str) -> str:
    """The value of a double-quoted PromQL (Go) string body."""
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
            i += 1
        elif body[i + 1] == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            out.append(_GO_ESCAPES[body[i + 1]])
            i += 2
    return "".join(out)


def matchers(expr: str) -> list[tuple[str, str, str]]:
    """(label, operator, decoded string) of every matcher of ``expr``, in order."""
    return [(m.group(1), m.group(2), decode(m.group(3))) for m in _MATCHER.finditer(expr)]


def selects(op: str, wanted: str, label_value: str) -> bool:
    """Whether a ``label <op> "wanted"`` matcher selects ``label_value`` (RE2 is anchored)."""
    if op == "=":
        return label_value == wanted
    if op == "!=":
        return label_value != wanted
    found = re.fullmatch(wanted, label_value, re.DOTALL) is not None
    return found if op == "=~" else not found


# ---------------------------------------------------------------------------------------------
# Every builtin provider: =~ escaped for RE2, = unchanged
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_dotted_names_are_regex_escaped_only_in_regex_matchers(
    provider: str, kind: CheckKind
) -> None:
    template = text_of(provider, kind)
    dotted = model("secret.app", namespace="team.a")
    expr = render_builtin(template, dotted, source="test")
    rendered = matchers(expr)
    expected = matchers(template)  # placeholders hold no quote: the same matchers, in order
    assert [(label, op) for label, op, _ in rendered] == [(label, op) for label, op, _ in expected]
    substituted = 0
    for (label, op, got), (_, _, want) in zip(rendered, expected, strict=True):
        if not _PLACEHOLDER.search(want):
            assert got == want, label  # the template's own matchers are untouched
            continue
        substituted += 1
        if op in ("=~", "!~"):
            assert got == _PLACEHOLDER.sub(lambda m: regex_escape(getattr(dotted, m[1])), want)
            assert "secret\\.app" in got or "team\\.a" in got
            assert f'{label}{op}"' in expr and "\\\\." in expr  # \. inside the string literal
        else:
            assert got == flagger_render(want, dotted)  # = / != : the value as it is
            assert "\\" not in got
    assert substituted > 0
    # outside string literals the query is Flagger's, whatever the values
    assert _code(expr) == _code(flagger_render(template, model("x", namespace="y")))


# (provider, label, the series label value of the Deployment "secret.app" in namespace "prod")
_OWN_SERIES = [
    ("istio", "destination_workload", "secret.app"),
    ("linkerd", "deployment", "secret.app"),
    ("kubernetes", "kubernetes_pod_name", "secret.app-6b7c8d9f5-abcde"),
    ("gatewayapi:v1", "kubernetes_pod_name", "secret.app-6b7c8d9f5-abcde"),
    ("gatewayapi:v1beta1", "kubernetes_pod_name", "secret.app-6b7c8d9f5-abcde"),
    ("appmesh", "kubernetes_pod_name", "secret.app-6b7c8d9f5-abcde"),
    ("appmesh:v1beta2", "kubernetes_pod_name", "secret.app-6b7c8d9f5-abcde"),
    ("contour", "envoy_cluster_name", "prod_secret.app-canary_80"),
    ("gloo", "envoy_cluster_name", "prod-secret.app-canaryupstream-80_x"),
    ("traefik", "service", "prod-secret.app-canary-80@kubernetescrd"),
    ("kuma", "service", "secret.app-canary_prod_svc_80"),
    ("apisix", "route", "prod_secret.app-secret.app-canary_x"),
    ("skipper", "route", "kube_prod__secret.app_canary__r__secret.app_canary"),
    ("osm", "destination_name", "secret.app"),
    ("nginx", "ingress", "secret.app"),
    ("knative", "envoy_cluster_name", "prod/secret.app"),
]


def test_the_table_covers_every_builtin_provider() -> None:
    assert sorted(p for p, _, _ in _OWN_SERIES) == sorted(BUILTIN_PROVIDERS)


@pytest.mark.parametrize(("provider", "label", "own"), _OWN_SERIES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_dotted_name_selects_its_own_series_only(
    provider: str, label: str, own: str, kind: CheckKind
) -> None:
    template = text_of(provider, kind)
    values = model("secret.app")
    ours = [(op, s) for lbl, op, s in matchers(render_builtin(template, values, source="t"))]
    flaggers = [(op, s) for lbl, op, s in matchers(flagger_render(template, values))]
    labels = [lbl for lbl, _, _ in matchers(template)]
    for lookalike in (own.replace(".", "-"), own.replace(".", "x")):
        for (op, wanted), (f_op, f_wanted), lbl in zip(ours, flaggers, labels, strict=True):
            if lbl != label:
                continue
            assert selects(op, wanted, own)
            assert not selects(op, wanted, lookalike)
            if f_op == "=~":  # the bug fixed: Flagger's regex also reads the look-alike
                assert selects(f_op, f_wanted, lookalike)


def test_planned_builtin_queries_are_escaped() -> None:
    canary = parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "secret.app", "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "secret.app"},
                "service": {"port": 80, "name": "secret"},
                "analysis": {
                    "interval": "1m",
                    "threshold": 1,
                    "maxWeight": 50,
                    "stepWeight": 10,
                    "metrics": [
                        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                        {"name": "request-duration", "thresholdRange": {"max": 500}},
                    ],
                },
            },
        }
    )
    for target in ("canary", "primary"):
        queries = plan_queries(
            canary,
            {},
            provider="istio",
            default_server=PROM,
            target=target,  # type: ignore[arg-type]
        )
        suffix = "" if target == "canary" else "-primary"
        for query in queries:
            assert query.expr is not None
            assert f'destination_workload=~"secret\\\\.app{suffix}"' in query.expr
            assert 'destination_workload_namespace="prod"' in query.expr


# ---------------------------------------------------------------------------------------------
# Ordinary names: byte-identical to Flagger's (and to the rendering before escaping)
# ---------------------------------------------------------------------------------------------

ORDINARY = ["podinfo", "api", "my-app", "a", "x1-2-3", "0abc", "web-primary", "a--b", "app-v2"]

# Rendered before the escaping existed (the istio success rate, "my-app" in "test-ns", 1m).
_MY_APP_ISTIO = (
    ' sum( rate( istio_requests_total{ reporter="destination", '
    'destination_workload_namespace="test-ns", destination_workload=~"my-app", '
    'response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ '
    'reporter="destination", destination_workload_namespace="test-ns", '
    'destination_workload=~"my-app" }[1m] ) ) * 100'
)
_MY_APP_GLOO_DURATION = (
    " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
    'envoy_cluster_name=~"test-ns-my-app-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) '
    "by (le) )"
)


def test_ordinary_names_render_the_known_strings() -> None:
    values = model("my-app", namespace="test-ns")
    assert render_builtin(text_of("istio", CheckKind.SUCCESS_RATE), values, source="t") == (
        _MY_APP_ISTIO
    )
    assert render_builtin(text_of("gloo", CheckKind.DURATION), values, source="t") == (
        _MY_APP_GLOO_DURATION
    )


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_render_as_flagger_does(provider: str, kind: CheckKind, name: str) -> None:
    template = text_of(provider, kind)
    for namespace in ("default", "test-ns"):
        values = model(name, namespace=namespace)
        expected = flagger_render(template, values)
        assert render_builtin(template, values, source="t") == expected
        assert render_query(template, values, source="t") == expected


_DNS_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(name=_DNS_LABEL, namespace=_DNS_LABEL, provider=st.sampled_from(BUILTIN_PROVIDERS))
def test_any_dns_label_renders_as_flagger_does(name: str, namespace: str, provider: str) -> None:
    values = model(name, namespace=namespace)
    for kind in KINDS:
        template = text_of(provider, kind)
        assert render_builtin(template, values, source="t") == flagger_render(template, values)


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_names_only_land_inside_quoted_matchers(provider: str, kind: CheckKind) -> None:
    """No builtin puts a name where PromQL would read it as code (``my-app`` as ``my - app``)."""
    template = text_of(provider, kind)
    lexer = _Lexer()
    pos = 0
    for found in _PLACEHOLDER.finditer(template):
        lexer.feed(template[pos : found.start()])
        pos = found.end()
        if found.group(1) == "interval":
            assert lexer.context is None and template[found.start() - 1] == "["
        else:
            assert lexer.context == '"', found.group(0)


# ---------------------------------------------------------------------------------------------
# The escaping itself
# ---------------------------------------------------------------------------------------------


def test_quotes_and_backslashes_in_both_matcher_kinds() -> None:
    values = model('x.y"z\\w')
    istio = render_builtin(text_of("istio", CheckKind.DURATION), values, source="t")
    assert 'destination_workload=~"x\\\\.y\\"z\\\\\\\\w"' in istio  # RE2 \. and \\ , then string
    assert 'destination_workload_namespace="prod"' in istio
    osm = render_builtin(text_of("osm", CheckKind.DURATION), values, source="t")
    assert 'destination_name="x.y\\"z\\\\w"' in osm  # string escaping only
    [(_, _, regex)] = [m for m in matchers(istio) if m[0] == "destination_workload"]
    assert re.fullmatch(regex, 'x.y"z\\w') and not re.fullmatch(regex, 'x-y"z\\w')


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ('a=~"{{ target }}"', 'a=~"s\\\\.a"'),
        ('a !~ "^{{ target }}$"', 'a !~ "^s\\\\.a$"'),
        ("a=~'{{ target }}'", "a=~'s\\\\.a'"),
        ("a=~`{{ target }}`", "a=~`s\\.a`"),  # a raw string: RE2 reads the backslash itself
        ('a=~ # a comment\n "{{ target }}"', 'a=~ # a comment\n "s\\\\.a"'),
        ('a="{{ target }}"', 'a="s.a"'),
        ('a!="{{ target }}"', 'a!="s.a"'),
        ('a=~"x", b="{{ target }}"', 'a=~"x", b="s.a"'),
        ('label_replace(v, "dst", "{{ target }}", "src", "(.*)")', None),
    ],
)
def test_the_matcher_kind_decides(template: str, rendered: str | None) -> None:
    values = model("s.a")
    expected = rendered if rendered is not None else template.replace("{{ target }}", "s.a")
    assert render_query(template, values, source="t", escape_regex=True) == expected
    # MetricTemplates and inline queries: the value is the author's regex text, as in Flagger
    assert render_query(template, values, source="t") == template.replace("{{ target }}", "s.a")


@pytest.mark.parametrize(
    ("chunks", "regex"),
    [
        (['a=~"'], True),
        (["a !~ ", ' "'], True),  # split where a placeholder or a comment action sat
        (["a =", '~"'], True),
        (["a = ", '~"'], False),  # "= ~" is not the =~ operator
        (["a=~ # note\n", '"'], True),  # a comment between the operator and its string
        (['a=~"x\\"', ", b=y"], True),  # an escaped quote does not close the string
        (["a=~`x`, b!=", '"'], False),
        (['x{a=~"', 'b"}', ' * on() group_left "'], False),
    ],
)
def test_the_lexer_tells_regex_matcher_strings(chunks: list[str], regex: bool) -> None:
    lexer = _Lexer()
    for chunk in chunks:
        lexer.feed(chunk)
    assert lexer.context in ('"', "`") and lexer.regex is regex


@pytest.mark.parametrize("meta", list(".+*?()[]{}|^$\\"))
def test_every_re2_metacharacter_is_escaped(meta: str) -> None:
    value = f"a{meta}b"
    assert regex_escape(value) == f"a\\{meta}b"
    expr = render_builtin(text_of("istio", CheckKind.DURATION), model(value), source="t")
    [(_, _, regex)] = [m for m in matchers(expr) if m[0] == "destination_workload"]
    assert regex == f"a\\{meta}b"
    assert re.fullmatch(regex, value)


names = st.text(min_size=1, max_size=16)


@settings(max_examples=200, deadline=None)
@given(target=names, namespace=names, provider=st.sampled_from(["istio", "kubernetes", "kuma"]))
def test_any_value_matches_exactly_itself_and_keeps_the_structure(
    target: str, namespace: str, provider: str
) -> None:
    values = TemplateModel(
        name=target,
        namespace=namespace,
        target=target,
        service=target,
        ingress=target,
        route=target,
        interval="1m",
    )
    for kind in KINDS:
        template = text_of(provider, kind)
        expr = render_builtin(template, values, source="t")
        lexer = _Lexer()
        lexer.feed(expr)
        assert lexer.context is None and not lexer.pending_escape
        assert _code(expr) == _code(flagger_render(template, model("x", namespace="y")))
        for (_, op, got), (_, _, want) in zip(matchers(expr), matchers(template), strict=True):
            if op in ("=~", "!~") and _PLACEHOLDER.search(want):
                literal = flagger_render(want, values)
                pattern = _PLACEHOLDER.sub(
                    lambda m: regex_escape(getattr(values, m.group(1))), want
                )
                assert got == pattern
                if not re.search(r"[\[(.]", want.replace("{{", "").replace("}}", "")):
                    assert re.fullmatch(got, literal, re.DOTALL)  # a pure identity matcher


# ---------------------------------------------------------------------------------------------
# Grouped queries escape the same way and select what the per-canary ones select
# ---------------------------------------------------------------------------------------------


def builtin(namespace: str, target: str, *, provider: str, kind: CheckKind) -> MetricQuery:
    values = model(target, namespace=namespace)
    text = text_of(provider, kind)
    return MetricQuery(
        canary=f"{namespace}/{target}",
        metric=str(kind),
        kind=kind,
        expr=render_builtin(text, values, source="t"),
        endpoint=Endpoint(server=PROM),
        observer=provider,
        model=values,
    )


def test_the_escaping_helpers_are_the_renderers() -> None:
    import analysis._grouping as grouping
    import analysis._render as render

    assert grouping.quote_escape is render.quote_escape
    assert grouping.regex_escape is render.regex_escape
    assert grouping.alternation is render.alternation
    assert alternation(["b.c", "a"]) == "(?:a|b\\.c)"
    assert quote_escape(alternation(["a\\b"])) == "(?:a\\\\\\\\b)"


_FLEET: list[tuple[str, str]] = [
    ("team.a", "api"),
    ("team-a", "api"),
    ("prod", "web"),
    ("prod", "we-b"),
]
_PROBES = ["team.a", "team-a", "teamxa", "prod", "api", "web", "we-b", "we.b", "other"]


@pytest.mark.parametrize("provider", GROUPED_PROVIDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_grouped_matchers_select_what_the_per_canary_ones_select(
    provider: str, kind: CheckKind
) -> None:
    fleet = [builtin(ns, t, provider=provider, kind=kind) for ns, t in _FLEET]
    if provider == "nginx":  # grouped by ingress: put the dot there too
        fleet = [builtin(ns, t.replace("-", "."), provider=provider, kind=kind) for ns, t in _FLEET]
    [request] = plan_requests(fleet)
    assert request.grouped
    grouped = {lbl: (op, s) for lbl, op, s in matchers(request.expr)}
    assert "\\\\." in request.expr  # the dotted names are RE2-escaped inside the string
    for label, (op, regex) in grouped.items():
        per_canary = [
            [(o, s) for lbl, o, s in matchers(q.expr or "") if lbl == label] for q in fleet
        ]
        if not _PLACEHOLDER.search(
            next(s for lbl, _, s in matchers(text_of(provider, kind)) if lbl == label)
        ):
            continue  # not an identity matcher (reporter="destination", ...)
        for probe in _PROBES + [_pod(v) for v in _PROBES]:
            in_group = selects(op, regex, probe)
            by_members = any(all(selects(o, s, probe) for o, s in ms) for ms in per_canary)
            assert in_group == by_members, (label, probe, regex)


def _pod(workload: str) -> str:
    return f"{workload}-6b7c8d9f5-abcde"


@pytest.mark.parametrize("provider", ["istio", "kubernetes", "linkerd", "appmesh"])
def test_dotted_targets_are_sent_per_canary_escaped(provider: str) -> None:
    fleet = [
        builtin("prod", t, provider=provider, kind=k)
        for t in ("secret.app", "secret-app", "other")
        for k in KINDS
    ]
    requests = plan_requests(fleet)
    dotted = [r for r in requests if not r.grouped]
    assert {fleet[i].canary for r in dotted for i in r.members} == {"prod/secret.app"}
    for request in dotted:
        assert request.expr == fleet[request.members[0]].expr
        assert "secret\\\\.app" in request.expr and "secret.app" not in request.expr
    for request in requests:
        if request.grouped:
            assert "(?:other|secret-app)" in request.expr


def _code(expr: str) -> str:
    """``expr`` with every double-quoted string replaced by ``"S"``."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '"S"', expr)
