"""Fixtures for the analysis tests: Canary and MetricTemplate documents built from short specs."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import config
from analysis import Check, CheckKind, Endpoint, MetricQuery, PrometheusSource, open_prometheus

#: The Prometheus address the respx-mocked tests answer for.
PROM = "http://prom.test:9090"

CanaryFactory = Callable[..., config.Canary]
TemplateFactory = Callable[..., config.MetricTemplate]


def canary_body(
    metrics: list[dict[str, Any]],
    *,
    provider: str | None = "istio",
    name: str = "podinfo",
    namespace: str = "test",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": copy.deepcopy(metrics),
            },
        },
    }
    if provider is not None:
        body["spec"]["provider"] = provider
    body["spec"].update(spec)
    return body


@pytest.fixture
def make_canary() -> CanaryFactory:
    """Build a validated Canary (``config.parse_canary``) around the given metrics."""

    def make(metrics: list[dict[str, Any]], **kwargs: Any) -> config.Canary:
        return config.parse_canary(canary_body(metrics, **kwargs))

    return make


@pytest.fixture
def make_unchecked_canary() -> CanaryFactory:
    """Build a Canary with only the schema checked, as an API server would store it."""

    def make(metrics: list[dict[str, Any]], **kwargs: Any) -> config.Canary:
        return config.Canary.model_validate(canary_body(metrics, **kwargs))

    return make


@pytest.fixture
def make_template() -> TemplateFactory:
    def make(
        name: str,
        query: str,
        *,
        namespace: str = "test",
        provider: dict[str, Any] | None = None,
    ) -> config.MetricTemplate:
        return config.parse_metric_template(
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "MetricTemplate",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"provider": provider or {"type": "prometheus"}, "query": query},
            }
        )

    return make


# -- a Prometheus source under respx ----------------------------------------------------------


class Sleeps:
    """The injected sleep: records the backoff delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def source(sleeps: Sleeps) -> AsyncIterator[PrometheusSource]:
    async with open_prometheus(sleep=sleeps) as src:
        yield src


def raw_check(
    expr: str = "up", *, lo: float | None = None, hi: float | None = None, **kw: Any
) -> Check:
    """``raw``'s query held to ``lo``..``hi``."""
    return Check(query=raw(expr, **kw), lo=lo, hi=hi)


def raw(
    expr: str = "up", *, scale: float = 1.0, endpoint: Endpoint | None = None, **kw: Any
) -> MetricQuery:
    """An inline query of ``test/podinfo``, sent to ``endpoint`` (default: Prometheus at PROM)."""
    return MetricQuery(
        canary="test/podinfo",
        metric="custom",
        kind=CheckKind.QUERY,
        expr=expr,
        endpoint=endpoint or Endpoint(server=PROM),
        scale=scale,
        **kw,
    )
