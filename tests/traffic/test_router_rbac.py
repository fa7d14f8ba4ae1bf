"""RBAC = what each router calls: every router module driven over HTTP against rbac.yaml.

``tests/e2e/test_rbac.py`` runs the controller with one Canary per router it drives end to end
(kubernetes, istio, nginx, Gateway API). The other router modules are driven here through a
whole rollout (initialize, the workload's bootstrap, reconcile, a weight step, promotion back to
the primary, finalize) against the fake API server of ``tests/kubeapi.py``, every request
recorded as the authorizer sees it. Both directions are checked for their resources: every call
is allowed by ``config/deploy/rbac.yaml``, and every rule on those resources is needed by a call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from router_world import ApiCall, open_world
from traffic_testkit import NOW, deployment, make_canary

from tests.e2e.test_rbac import PROVIDERS, Call, rbac_grants
from traffic import TargetWorkload, Weights, router_for, router_module, supported_providers

#: provider -> the Canary spec fields it needs, and objects it expects to find.
SCENARIOS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "linkerd": ({}, []),
    "osm": ({}, []),
    "smi:v1alpha3:linkerd": ({}, []),
    "contour": ({}, []),
    "gloo": (
        {"upstreamRef": {"name": "podinfo-config", "namespace": "gloo-system"}},
        [
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": "podinfo-config", "namespace": "gloo-system"},
                "spec": {"useHttp2": True},
            }
        ],
    ),
    "traefik": ({}, []),
    "apisix": (
        {"routeRef": {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "r"}},
        [
            {
                "apiVersion": "apisix.apache.org/v2",
                "kind": "ApisixRoute",
                "metadata": {"name": "r", "namespace": "test"},
                "spec": {
                    "http": [
                        {"name": "r", "backends": [{"serviceName": "podinfo", "servicePort": 80}]}
                    ]
                },
            }
        ],
    ),
    "skipper": (
        {"ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}},
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "test"},
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": "podinfo", "port": {"number": 80}}
                                        },
                                    }
                                ]
                            }
                        }
                    ]
                },
            }
        ],
    ),
    "kuma": ({}, []),
    "appmesh": ({"service": {"port": 9898, "meshName": "global"}}, []),
    "appmesh:v1beta2": ({}, []),
    "knative": (
        {
            "targetRef": {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "name": "podinfo",
            }
        },
        [
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {"template": {"spec": {"containers": [{"image": "podinfo"}]}}},
                "status": {"latestCreatedRevisionName": "podinfo-00001"},
            },
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Revision",
                "metadata": {"name": "podinfo-00001", "namespace": "test"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        ],
    ),
}


def checked_here() -> set[tuple[str, str]]:
    """(API group, resource) of the router modules test_rbac.py's controller run does not use."""
    used = {router_module(p) for p in PROVIDERS.values()}
    return {
        (kind.group, kind.plural)
        for provider in supported_providers()
        if (module := router_module(provider)) is not None and module not in used
        for kind in module.kinds
    }


async def drive(provider: str, tmp_path: Path) -> list[ApiCall]:
    spec, objects = SCENARIOS[provider]
    canary = make_canary(provider=provider, **spec)
    async with open_world("kube", tmp_path) as world:
        world.seed(deployment(), *objects)
        assert world.api is not None
        world.api.log.clear()
        router = router_for(provider, world.cluster)
        workload = TargetWorkload(world.cluster)
        await router.initialize(canary)
        await workload.initialize(canary)
        await workload.readiness(canary, primary=True, now=NOW)
        await router.reconcile(canary)
        await router.set_routes(canary, Weights(90, 10))
        await router.get_routes(canary)
        await router.reconcile(canary)
        await router.set_routes(canary, Weights(100, 0))
        # the user edits the Canary: reconcile brings the generated objects in line (patches)
        service = {**(spec.get("service") or {"port": 9898}), "backends": ["payments"]}
        await router.reconcile(make_canary(provider=provider, **{**spec, "service": service}))
        await router.finalize(canary)
        return world.calls()


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[ApiCall]]:
    import asyncio

    return {
        provider: asyncio.run(drive(provider, tmp_path_factory.mktemp(provider.replace(":", "-"))))
        for provider in SCENARIOS
    }


def test_every_router_module_not_run_by_the_controller_test_has_a_scenario() -> None:
    used = {router_module(p) for p in PROVIDERS.values()}
    missing = {
        m.names[0] for p in supported_providers() if (m := router_module(p)) and m not in used
    } - {router_module(p).names[0] for p in SCENARIOS if router_module(p)}  # type: ignore[union-attr]
    assert missing == set(), f"add a scenario for {missing}"


def test_every_call_a_router_sends_is_allowed(calls: dict[str, list[ApiCall]]) -> None:
    grants = rbac_grants()
    denied = sorted(
        f"{provider}: {c.verb} {c.resource}.{c.group}"
        for provider, found in calls.items()
        for c in found
        if not any(g.allows(Call(c.verb, c.group, c.resource, c.namespace, c.name)) for g in grants)
    )
    assert denied == [], "calls config/deploy/rbac.yaml does not allow:\n" + "\n".join(denied)


def test_every_rule_on_these_routers_resources_is_needed(calls: dict[str, list[ApiCall]]) -> None:
    every = [
        Call(c.verb, c.group, c.resource, c.namespace, c.name) for f in calls.values() for c in f
    ]
    unused = sorted(
        str(g)
        for g in rbac_grants()
        if (g.group, g.resource) in checked_here() and not any(g.allows(c) for c in every)
    )
    assert unused == [], "rules no router call needs:\n" + "\n".join(unused)
    # and the routers' own resources are read by name, never listed or watched; only a
    # cluster-scoped one (no owner reference can hold it) is deleted, when its Canary goes
    cluster_scoped = {
        (kind.group, kind.plural)
        for provider in supported_providers()
        if (module := router_module(provider)) is not None
        for kind in module.kinds
        if not kind.namespaced
    }
    for c in every:
        if (c.group, c.resource) in checked_here():
            allowed = {"get", "create", "patch"}
            if (c.group, c.resource) in cluster_scoped:
                allowed.add("delete")
            assert c.verb in allowed, c
