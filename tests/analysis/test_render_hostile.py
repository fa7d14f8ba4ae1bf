"""Hostile query templates (found by fuzzing MetricTemplates): a template the size of the largest
Kubernetes object renders in linear time, and an error quotes the offending text short."""

from __future__ import annotations

import time

import pytest

from analysis import RenderError, TemplateModel, render_query
from analysis._render import syntax_problem

MODEL = TemplateModel(
    name="podinfo-canary",
    namespace="test",
    target="podinfo",
    service="podinfo-svc",
    ingress="podinfo-ing",
    route="podinfo-route",
    interval="30s",
    variables={"k": "v"},
)


def test_a_printf_of_200000_arguments_renders_in_linear_time() -> None:
    # ~1.4 MB, about the most a Canary's MetricTemplate can hold in etcd. Reading the arguments
    # sliced the rest of the action once per argument and the values were taken with
    # list.pop(0): quadratic, ~8 s of the controller's event loop on every render (and validate).
    count = 200_000
    template = '{{ printf "' + "%s" * count + '"' + " name" * count + " }}"
    started = time.perf_counter()
    rendered = render_query(template, MODEL, source="MetricTemplate test/huge")
    assert time.perf_counter() - started < 3
    assert rendered == "podinfo-canary" * count


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "x" * 100_000 + " }}",  # an unknown function named by 100,000 characters
        '{{ printf "a"' + "b" * 100_000 + " }}",  # arguments not separated by spaces
        '{{ printf "%s' + "s" * 100_000 + '" }}',  # more verbs than values
        '{{ printf "a" ' + "(" * 100_000 + " }}",  # an argument that cannot be read
        "{{ .x" + "y" * 100_000 + " }}",  # an unsupported action
        "{{ index " + "v" * 100_000 + ' "k" }}',  # index of something else than variables
    ],
    ids=["function", "no space", "verbs", "argument", "action", "index"],
)
def test_an_error_quotes_a_huge_action_short(template: str) -> None:
    problem = syntax_problem(template, source="MetricTemplate test/huge")
    assert problem is not None
    assert len(problem) < 800, problem[:200]
    assert "characters)" in problem  # says how long the text it cut was


def test_a_huge_value_outside_a_string_is_quoted_short() -> None:
    model = TemplateModel(
        name="a b" * 50_000, namespace="t", target="t", service="t", ingress="", route="",
        interval="1m", variables={},
    )  # fmt: skip
    with pytest.raises(RenderError) as caught:
        render_query("up{} / {{ name }}", model, source="q")
    assert len(str(caught.value)) < 600 and "(150,000 characters)" in str(caught.value)
