"""The in-cluster metric providers (keptn, externalmetrics) against the Kubernetes API test server.

kubernetes-asyncio really talks to ``tests/kubeapi.py`` over HTTP through the controller's Cluster
seam (``open_kube_cluster`` + ``engine.shell.kube_metrics.ClusterKubeApi``, as ``canary-engine run``
wires them). Seeded: a KeptnMetric with ``status.value``, ExternalMetricValue items under
``external.metrics.k8s.io/v1beta1/namespaces/test/queue_depth``; a small task plays Keptn,
completing every Analysis the provider creates. Checked: values, quantities, label selectors, no
data, an Analysis created, read to 1/0 and deleted, the series refusal naming the template, and
the opt-in RBAC (config/deploy/metric-providers) against every call, both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis import (
    CheckKind,
    Endpoint,
    FailureKind,
    MetricQuery,
    MetricSources,
    QueryFailure,
    SeriesRequest,
    open_metric_sources,
)
from engine.shell.kube_metrics import ClusterKubeApi
from tests.kubeapi import FakeKubeApi, serve_kube_api
from traffic import open_kube_cluster

pytestmark = pytest.mark.slow

NS = "test"
ANALYSES = "analyses.metrics.keptn.sh"


OPT_IN_RBAC = Path(__file__).resolve().parents[2] / "config/deploy/metric-providers/rbac.yaml"
#: The external-metrics rule config/deploy/metric-providers/rbac.yaml tells users to uncomment.
DOCUMENTED_RULE = (
    '  # - apiGroups: ["external.metrics.k8s.io"]\n'
    '  #   resources: ["queue_depth"]\n'
    '  #   verbs: ["list"]\n'
)


def _opt_in_grants() -> list[Any]:
    """The opt-in RBAC's grants, its external-metrics rule uncommented as its comment says."""
    from tests.e2e.test_rbac import SERVICE_ACCOUNT, grants_of

    text = OPT_IN_RBAC.read_text()
    assert DOCUMENTED_RULE in text
    filled = text.replace(DOCUMENTED_RULE, DOCUMENTED_RULE.replace("  # ", "  "))
    documents = [d for d in yaml.safe_load_all(filled) if d]
    assert {d["kind"] for d in documents} == {"ClusterRole", "ClusterRoleBinding"}
    return list(grants_of(documents, SERVICE_ACCOUNT))


def query(provider: str, expr: str, template: str = "test/t") -> MetricQuery:
    return MetricQuery(
        canary="test/podinfo",
        metric="m",
        kind=CheckKind.TEMPLATE,
        template=template,
        endpoint=Endpoint(provider_type=provider, server=None),
        expr=expr,
    )


def external_value(name: str, labels: dict[str, str], value: str) -> dict[str, object]:
    # The test server stores objects by name; the real API answers items without metadata.
    return {
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "kind": "ExternalMetricValue",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "metricName": "queue_depth",
        "metricLabels": labels,
        "timestamp": "2026-12-01T09:00:00Z",
        "value": value,
    }


@contextlib.asynccontextmanager
async def live(tmp_path: Path) -> AsyncIterator[tuple[FakeKubeApi, MetricSources]]:
    async with serve_kube_api() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        async with (
            open_kube_cluster(str(config), sleep=asyncio.sleep, cache_kinds=()) as cluster,
            open_metric_sources(
                sleep=asyncio.sleep, now=time.time, kube=ClusterKubeApi(cluster)
            ) as sources,
        ):
            yield api, sources


async def test_external_metrics_value_quantity_and_selector(tmp_path: Path) -> None:
    async with live(tmp_path) as (api, sources):
        api.store.put(external_value("a", {"app": "podinfo"}, "1500m"), plural="queue_depth")
        api.store.put(external_value("b", {"app": "other"}, "7"), plural="queue_depth")
        answers = await sources.fetch(
            [
                query("externalmetrics", "test/queue_depth?labelSelector=app%3Dpodinfo"),
                query("externalmetrics", "test/queue_depth?labelSelector=app%3Dother"),
                query("externalmetrics", "test/queue_depth?labelSelector=app%3Dnone"),
                query("externalmetrics", "test/no_such_metric"),
                query("externalmetrics", "test/queue_depth?labelSelector=app+in+%28a%29"),
            ]
        )
    assert answers[:2] == [1.5, 7.0]
    for answer in answers[2:4]:
        assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA
        assert "no external metrics found" in answer.message
    assert isinstance(answers[4], QueryFailure)
    assert "only key=value terms are supported" in answers[4].message


async def test_external_metrics_cannot_answer_series(tmp_path: Path) -> None:
    async with live(tmp_path) as (_, sources):
        [answer] = await sources.fetch_series(
            [
                SeriesRequest(
                    query=query("externalmetrics", "test/queue_depth", "test/queue-depth"),
                    start=0,
                    end=60,
                    step=60,
                )
            ]
        )
    assert isinstance(answer, QueryFailure)
    assert "externalmetrics MetricTemplate queue-depth.test" in answer.message
    assert "cannot answer series" in answer.message


async def test_keptn_metric_value(tmp_path: Path) -> None:
    async with live(tmp_path) as (api, sources):
        api.store.put(
            {
                "apiVersion": "metrics.keptn.sh/v1beta1",
                "kind": "KeptnMetric",
                "metadata": {"name": "response-time", "namespace": NS},
                "spec": {"provider": {"name": "prom"}, "query": "x", "fetchIntervalSeconds": 10},
                "status": {"value": "42.5"},
            },
            plural="keptnmetrics",
        )
        value, missing = await sources.fetch(
            [
                query("keptn", "KeptnMetric/test/Response-Time/2m/reporter=destination\n"),
                query("keptn", "keptnmetric/test/absent"),
            ]
        )
    assert value == 42.5  # the query is lower-cased, as Flagger does
    assert isinstance(missing, QueryFailure)
    assert "could not retrieve KeptnMetric test/absent" in missing.message


@pytest.mark.parametrize(("passed", "expected"), [(True, 1.0), (False, 0.0)])
async def test_keptn_analysis_is_created_read_and_deleted(
    tmp_path: Path, passed: bool, expected: float
) -> None:
    async with live(tmp_path) as (api, sources):
        seen: list[dict[str, object]] = []

        async def keptn() -> None:  # completes every Analysis the provider creates
            while True:
                for body in api.store.objects(ANALYSES, NS):
                    if not body.get("status"):
                        seen.append(body)
                        body["status"] = {"state": "Completed", "pass": passed}
                        api.store.put(body, plural="analyses")
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(keptn())
        try:
            [answer] = await sources.fetch(
                [query("keptn", "analysis/test/slo-check/5m/service=podinfo;team=a")]
            )
        finally:
            task.cancel()
        remaining = api.store.objects(ANALYSES, NS)
    assert answer == expected
    assert len(seen) == 1
    spec = seen[0]["spec"]
    assert spec == {
        "analysisDefinition": {"name": "slo-check"},
        "timeframe": {"recent": "5m"},
        "args": {"service": "podinfo", "team": "a"},
    }
    meta = seen[0]["metadata"]
    assert isinstance(meta, dict) and str(meta["name"]).startswith("slo-check-")
    assert remaining == []


async def test_rbac_allows_every_call_and_needs_every_rule(tmp_path: Path) -> None:
    """The base RBAC plus config/deploy/metric-providers (with its external-metrics rule filled
    in for the metric queried, as its comment says) against the calls these providers send,
    both directions (test_rbac.py's evaluator)."""
    from tests.e2e.test_rbac import Call

    grants = _opt_in_grants()

    async with live(tmp_path) as (api, sources):
        api.store.put(external_value("a", {"app": "podinfo"}, "3"), plural="queue_depth")
        api.store.put(
            {
                "apiVersion": "metrics.keptn.sh/v1beta1",
                "kind": "KeptnMetric",
                "metadata": {"name": "rt", "namespace": NS},
                "status": {"value": "1"},
            },
            plural="keptnmetrics",
        )

        async def keptn() -> None:
            while True:
                for body in api.store.objects(ANALYSES, NS):
                    if not body.get("status"):
                        body["status"] = {"state": "Completed", "pass": True}
                        api.store.put(body, plural="analyses")
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(keptn())
        try:
            answers = await sources.fetch(
                [
                    query("externalmetrics", "test/queue_depth?labelSelector=app%3Dpodinfo"),
                    query("keptn", "keptnmetric/test/rt"),
                    query("keptn", "analysis/test/slo"),
                ]
            )
        finally:
            task.cancel()
        calls = [Call.of(r) for r in api.log]
    assert answers == [3.0, 1.0, 1.0]
    assert [str(c) for c in calls if not any(g.allows(c) for g in grants)] == []
    assert [str(g) for g in grants if not any(g.allows(c) for c in calls)] == []
