"""One Canary ``web`` in ``staging`` on an InMemoryCluster, driven by a CanaryDriver on a virtual
clock: healthy metrics, every webhook answering 2xx (or the caller given), for tests of the
driver's own behaviour (finalizers, event webhooks) rather than of the decision core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from analysis import HookOutcome, MetricQuery, QueryFailure, WebhookCaller
from config import Webhook
from engine import CanaryDriver, EngineDeps, Settings, VirtualClock
from traffic import DeploymentWorkload, InMemoryCluster, router_for

NS = "staging"


class Healthy:
    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        return [99.9 for _ in queries]


class Recorder:
    """Every webhook answers 2xx; the calls are kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[Webhook, Mapping[str, Any]]] = []

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        self.calls.append((hook, payload))
        return HookOutcome(hook, True)


def web_app() -> tuple[dict[str, Any], dict[str, Any]]:
    """The app a canary of these tests releases: a 3-replica Deployment ``web`` (``web:1``) and
    the user's own Service ``web``, which the canary takes over."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]},
    }
    return deployment, service


def web_driver(
    *,
    webhooks: Sequence[Mapping[str, Any]] = (),
    caller: WebhookCaller | None = None,
    settings: Settings | None = None,
    metrics: Callable[[VirtualClock], Any] | None = None,
    clock: VirtualClock | None = None,
    provider_check: Callable[[Sequence[MetricQuery]], Awaitable[str]] | None = None,
    **spec: Any,
) -> tuple[InMemoryCluster, CanaryDriver]:
    """The cluster (a 3-replica Deployment ``web``, the user's Service ``web`` and the Canary,
    with ``spec`` fields added) and the driver of that Canary."""
    clock = clock or VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    cluster.seed(
        *web_app(),
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "web", "namespace": NS, "uid": "uid-web"},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 50,
                    "webhooks": list(webhooks),
                },
                **spec,
            },
        },
    )
    deps = EngineDeps(
        cluster=cluster,
        clock=clock,
        workload=DeploymentWorkload(cluster),
        router_for=lambda provider: router_for(provider, cluster),
        metrics=metrics(clock) if metrics is not None else Healthy(),
        webhooks=caller or Recorder(),
        settings=settings or Settings(),
        provider_check=provider_check,
    )
    return cluster, CanaryDriver(deps, NS, "web")
