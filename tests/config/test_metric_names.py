"""A metric's ``name`` may be empty, as Flagger's CRD allows (its scheduler tests build template
metrics with ``Name: ""``); a metric with an empty name and nothing to query is refused like any
metric with nothing to query."""

from __future__ import annotations

from typing import Any

import pytest

from config import SpecError, parse_canary


def canary(metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "stepWeight": 10, "metrics": [metric]},
        },
    }


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "", "templateRef": {"name": "envoy"}, "thresholdRange": {"min": 0, "max": 100}},
        {"name": "", "query": "sum(up)", "thresholdRange": {"max": 1}},
    ],
)
def test_a_template_or_query_metric_may_have_an_empty_name(metric: dict[str, Any]) -> None:
    parsed = parse_canary(canary(metric))
    assert parsed.spec.effective_analysis.metrics[0].name == ""


def test_an_empty_name_with_nothing_to_query_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        parse_canary(canary({"name": "", "thresholdRange": {"max": 1}}))
    assert "has neither templateRef nor query" in str(caught.value)
