"""Query templates render like Flagger's, and substituted values cannot rewrite the query."""

from __future__ import annotations

import re

import pytest

from analysis import RenderError, TemplateModel, collapse_whitespace, render_query

MODEL = TemplateModel(
    name="podinfo-canary",
    namespace="test",
    target="podinfo",
    service="podinfo-svc",
    ingress="podinfo-ing",
    route="podinfo-route",
    interval="30s",
    variables={"reporter": "source", "quantile": "0.95"},
)


def _render(template: str, **variables: str) -> str:
    model = (
        MODEL
        if not variables
        else TemplateModel(
            name=MODEL.name,
            namespace=MODEL.namespace,
            target=MODEL.target,
            service=MODEL.service,
            ingress=MODEL.ingress,
            route=MODEL.route,
            interval=MODEL.interval,
            variables=variables,
        )
    )
    return render_query(template, model, source="MetricTemplate test/latency")


def test_every_variable_renders() -> None:
    template = (
        'x{name="{{ name }}", ns="{{ namespace }}", t="{{ target }}", s="{{ service }}", '
        'i="{{ ingress }}", r="{{ route }}", rep="{{ variables.reporter }}"}[{{ interval }}]'
    )
    assert _render(template) == (
        'x{name="podinfo-canary", ns="test", t="podinfo", s="podinfo-svc", i="podinfo-ing", '
        'r="podinfo-route", rep="source"}[30s]'
    )


def test_whitespace_inside_braces_is_optional_and_trim_markers_work() -> None:
    assert _render('a{t="{{target}}",n="{{   namespace\t}}"}') == 'a{t="podinfo",n="test"}'
    assert _render("sum(x)  \n  {{- /* a comment */ -}}  \n  by (le)") == "sum(x)by (le)"
    assert _render("{{/* nothing */}}up") == "up"


def test_unquoted_safe_values_are_allowed() -> None:
    assert _render("histogram_quantile({{ variables.quantile }}, x[{{ interval }}])") == (
        "histogram_quantile(0.95, x[30s])"
    )


def test_missing_variable_names_the_variable_and_the_template() -> None:
    with pytest.raises(RenderError) as caught:
        _render('x{a="{{ variables.missing }}"}')
    message = str(caught.value)
    assert '"missing"' in message
    assert "MetricTemplate test/latency" in message
    assert "reporter" in message  # says which variables are set


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ('{{ sprintf "%s" target }}', '"sprintf"'),
        ("{{ namespaces }}", '"namespaces"'),
        ('{{ upper "k" }}', '"upper"'),
    ],
)
def test_unknown_function_is_a_render_error(template: str, named: str) -> None:
    with pytest.raises(RenderError, match="not defined") as caught:
        _render(template)
    assert named in str(caught.value)


def test_index_reads_any_templatevariables_key_as_gos_does() -> None:
    """``{{ index variables "consumer-group" }}``: Go's only way to a key with a dash."""
    variables = {"consumer-group": "payments", "topic": "orders"}
    assert _render('x{cg="{{ index variables "consumer-group" }}"}', **variables) == (
        'x{cg="payments"}'
    )
    assert _render('x{t="{{index variables `topic`}}"}', **variables) == 'x{t="orders"}'
    with pytest.raises(RenderError, match=r'variable "missing" is not set'):
        _render('x{a="{{ index variables "missing" }}"}', **variables)
    with pytest.raises(RenderError, match="unsupported escape"):
        _render('x{a="{{ index variables "to\\u0070ic" }}"}', **variables)


def test_printf_builds_a_value_from_names_as_gos_does() -> None:
    """The Skipper tutorial's template: a route regex built from three names."""
    template = (
        'skipper_serve_route_duration_seconds_bucket{route=~"{{ printf '
        '"kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}"}'
    )
    assert _render(template) == (
        'skipper_serve_route_duration_seconds_bucket{route=~"kube(ew)?_test__podinfo-ing_canary__'
        '.*__podinfo-svc_canary(_[0-9]+)?"}'
    )
    assert _render('x{a="{{ printf `%s-%v%%` target variables.reporter }}"}') == (
        'x{a="podinfo-source%"}'
    )


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('{{ printf "%d" target }}', "verb %d is not supported"),
        ('{{ printf "%s-%s" target }}', "more verbs than values"),
        ('{{ printf "%s" target name }}', "more values than verbs"),
        ("{{ printf target }}", "needs a format string first"),
        ("{{ printf }}", "needs a format string first"),
        ("{{ index }}", 'write {{ index variables "KEY" }}'),
        ('{{ printf "%s" (index variables "k") }}', "parentheses"),
        ('{{ index target "k" }}', 'write {{ index variables "KEY" }}'),
    ],
)
def test_printf_and_index_misuse_is_named(template: str, reason: str) -> None:
    with pytest.raises(RenderError, match=re.escape(reason)):
        _render(template)


@pytest.mark.parametrize("template", ["{{ .Target }}", "{{ target | upper }}", '{{ "x" }}'])
def test_unsupported_actions_are_render_errors(template: str) -> None:
    with pytest.raises(RenderError):
        _render(template)


def test_unclosed_action_and_bare_variables_map_are_errors() -> None:
    with pytest.raises(RenderError, match="not closed"):
        _render('x{a="{{ target"}')
    with pytest.raises(RenderError, match=r"variables\.KEY"):
        _render("{{ variables }}")


def test_quote_injection_stays_inside_the_string() -> None:
    evil = 'x"} or vector(1) or up{a="'
    rendered = _render('errors{job="{{ variables.job }}"}', job=evil)
    assert rendered == 'errors{job="x\\"} or vector(1) or up{a=\\""}'


def test_backslash_injection_cannot_escape_the_closing_quote() -> None:
    rendered = _render('errors{job="{{ variables.job }}"}', job="x\\")
    assert rendered == 'errors{job="x\\\\"}'
    rendered = _render('errors{job="{{ variables.job }}"}', job='\\"')
    assert rendered == 'errors{job="\\\\\\""}'


def test_control_characters_are_escaped_in_strings() -> None:
    rendered = _render('a{b="{{ variables.v }}"}', v="one\ntwo\tthree\x01")
    assert rendered == 'a{b="one\\ntwo\\tthree\\x01"}'


def test_single_quoted_and_raw_strings() -> None:
    assert _render("a{b='{{ variables.v }}'}", v="it's") == "a{b='it\\'s'}"
    assert _render("a{b=`{{ variables.v }}`}", v='say "hi"') == 'a{b=`say "hi"`}'
    with pytest.raises(RenderError, match="backtick"):
        _render("a{b=`{{ variables.v }}`}", v="x`")


@pytest.mark.parametrize("value", ["5m]) or vector(1", "1m]", "", "a b", "x}", "1m\n"])
def test_unsafe_unquoted_value_is_refused_with_the_reason(value: str) -> None:
    with pytest.raises(RenderError) as caught:
        _render("rate(x[{{ variables.window }}])", window=value)
    message = str(caught.value)
    assert "outside a quoted string" in message
    assert "variables.window" in message


def test_action_after_a_backslash_inside_a_string_is_refused() -> None:
    with pytest.raises(RenderError, match="backslash"):
        _render('a{b="\\{{ target }}"}')


def test_comments_and_escaped_quotes_do_not_confuse_the_lexer() -> None:
    template = '# it\'s "a comment\nx{a="say \\"{{ target }}\\"", b="{{ variables.v }}"}'
    rendered = _render(template, v='"')
    assert rendered == '# it\'s "a comment\nx{a="say \\"podinfo\\"", b="\\""}'
    # In a comment a value is held to the unquoted rule, so it cannot end the comment.
    with pytest.raises(RenderError):
        _render("# {{ variables.v }}\nup", v="x\nvector(1)")


def test_collapse_whitespace_keeps_the_leading_space() -> None:
    assert collapse_whitespace("\n\tsum(\n\t\trate(x[1m])\n\t)  ") == " sum( rate(x[1m]) ) "
