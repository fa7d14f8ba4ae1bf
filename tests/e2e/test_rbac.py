"""RBAC = what the code calls: config/deploy/rbac.yaml against every request the controller sends.

``canary-engine run`` (``run_controller``, with leader election) drives Canaries against the fake
API server of ``tests/kubeapi.py`` (kubernetes-asyncio over real HTTP, as in
``test_controller_kube.py``, whose world and helpers this reuses) through the paths the code has:

* a cold start: the caches of everything but Canaries cannot LIST yet (the API answers 500 until
  every Canary is initialised), so the first ticks read Deployments, Services, HPAs, ConfigMaps,
  MetricTemplates and AlertProviders with GETs, as ``KubeCluster`` does before a cache has synced;
* initialisation and a full rollout of five Canaries, one per router: ``kubernetes`` (tracked
  ConfigMap and Secret, a MetricTemplate whose Prometheus credentials come from a ``secretRef``,
  alerts through an AlertProvider whose hook address comes from a Secret, revertOnDeletion),
  ``istio`` (an HPA, a pre-existing DestinationRule that has drifted), ``nginx`` (the user's
  Ingress), ``gatewayapi:v1`` and ``gatewayapi:v1beta1``; the tracked ConfigMap/Secret and the HPA
  change with the new revision, so promotion patches their ``-primary`` copies;
* a rollback of all five (every check fails);
* deleting the revertOnDeletion Canary (the API server sets ``deletionTimestamp``; the controller
  reverts and removes ``finalizer.flagger.app``);
* leader election throughout (create, then get + patch the Lease), and a release on shutdown.

Every request is recorded as the API server's authorizer sees it: (verb, API group, resource or
resource/subresource, namespace, name), verbs mapped from HTTP as Kubernetes does (GET of one
object ``get``, of a collection ``list``, with ``watch=true`` ``watch``; POST ``create``, PATCH
``patch``, PUT ``update``, DELETE ``delete``). Then both directions are checked: every call is
allowed by the Roles and ClusterRoles bound to the ``canary-engine`` ServiceAccount, and every
rule is exercised by some call, or listed in ``NOT_EXERCISED`` with the reason it is needed.

Also: ``KubeCluster`` never caches Secrets, whoever asks (so no ``list``/``watch`` on them), and
with ``--namespace`` the controller sends no cluster-wide request (RoleBindings suffice).
"""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import engine.shell.run
from tests.e2e.test_controller_kube import (
    LEASE_NS,
    NS,
    SAMPLE,
    V1,
    V2,
    World,
    alive,
    deployment,
    open_world,
    start,
)
from tests.kubeapi import RecordedRequest, serve_kube_api
from traffic import CONFIGMAP, SECRET, ObjectRef, open_kube_cluster

pytestmark = pytest.mark.timeout(180)

Body = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "config" / "deploy" / "rbac.yaml"
SERVICE_ACCOUNT = ("canary-engine", "flux-system")
IDENTITY = "canary-engine-0"
V3 = "ghcr.io/example/webhook-server:1.2.0"

#: Grants (API group, resource, verb) that no scenario here can exercise, and why they are needed.
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    ("flagger.app", "canaries/finalizers", "update"): (
        "every object the controller creates carries an owner reference to its Canary with "
        "blockOwnerDeletion: true; with the OwnerReferencesPermissionEnforcement admission "
        "plugin (OpenShift, hardened clusters) the API server then requires update on the "
        "owner's finalizers subresource; the fake API server runs no admission plugins"
    ),
}

# ---------------------------------------------------------------------------- RBAC evaluation


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the authorizer sees it."""

    verb: str
    group: str
    resource: str  # plural or plural/subresource
    namespace: str | None
    name: str | None

    @classmethod
    def of(cls, request: RecordedRequest) -> Call:
        return cls(request.verb, request.group, request.resource, request.namespace, request.name)

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " (all namespaces)"
        name = f" {self.name}" if self.name else ""
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {self.resource}{group}{name}{where}"


@dataclass(frozen=True, slots=True)
class Grant:
    """One (group, resource, verb[, resourceNames]) of a rule, and where it applies."""

    role: str  # "ClusterRole/<name>" or "Role/<namespace>/<name>"
    namespace: str | None  # None: every namespace and cluster-wide requests (a ClusterRole)
    group: str
    resource: str
    verb: str
    names: tuple[str, ...]

    def allows(self, call: Call) -> bool:
        return (
            (self.namespace is None or call.namespace == self.namespace)
            and self.group in ("*", call.group)
            and self.resource in ("*", call.resource)
            and self.verb in ("*", call.verb)
            and (not self.names or call.name in self.names)
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return self.group, self.resource, self.verb

    def __str__(self) -> str:
        names = f" {list(self.names)}" if self.names else ""
        group = f".{self.group}" if self.group else ""
        return f"{self.role}: {self.verb} {self.resource}{group}{names}"


def grants_of(documents: Sequence[Body], subject: tuple[str, str]) -> list[Grant]:
    """Every grant of the Roles and ClusterRoles bound to the ServiceAccount ``subject``."""
    name, namespace = subject
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in documents
    }
    found: list[Grant] = []
    for doc in documents:
        if doc["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == name
            and s.get("namespace") == namespace
            for s in doc.get("subjects") or ()
        ):
            continue
        ref = doc["roleRef"]
        binding_ns = doc["metadata"].get("namespace") if doc["kind"] == "RoleBinding" else None
        role_ns = binding_ns if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        label = "/".join(p for p in (ref["kind"], role_ns, ref["name"]) if p)
        found.extend(
            Grant(label, binding_ns, group, resource, verb, tuple(rule.get("resourceNames") or ()))
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        )
    return found


def rbac_grants() -> list[Grant]:
    documents = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return grants_of(documents, SERVICE_ACCOUNT)


# ---------------------------------------------------------------------------- the world


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, **data: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "Opaque",
        "data": {k: b64(v) for k, v in data.items()},
    }


def config_map(name: str, **data: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def hpa(name: str, max_replicas: int) -> Body:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


#: Canary name -> spec.provider.
PROVIDERS = {
    "web": "kubernetes",
    "web-istio": "istio",
    "web-nginx": "nginx",
    "web-gw": "gatewayapi:v1",
    "web-gw-beta": "gatewayapi:v1beta1",
}
GATEWAYS = [{"name": "public", "namespace": "gateways"}]


def seed(w: World) -> None:
    """Five Canaries (one per router) with what each path needs; see the module docstring."""
    sample_canary, template = yaml.safe_load_all(SAMPLE.read_text())
    template["spec"]["provider"]["address"] = w.prom.url
    template["spec"]["provider"]["secretRef"] = {"name": "prom-auth"}
    w.api.store.seed(
        template,
        secret("prom-auth", token="prometheus-bearer-token"),
        secret("on-call-hook", address=f"{w.prom.url}/hooks/on-call"),
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "on-call", "namespace": NS},
            "spec": {"type": "slack", "channel": "#deploys", "secretRef": {"name": "on-call-hook"}},
        },
    )
    for name, provider in PROVIDERS.items():
        canary = copy.deepcopy(sample_canary)
        canary["metadata"]["name"] = name
        spec = canary["spec"]
        spec["provider"] = provider
        spec["targetRef"]["name"] = name
        analysis = spec["analysis"]
        target = deployment(name, V1)
        if provider == "kubernetes":
            for hook in analysis["webhooks"]:
                hook["url"] = f"{w.prom.url}/hooks/{hook['name']}"
            analysis["alerts"] = [
                {"name": "on-call", "severity": "info", "providerRef": {"name": "on-call"}}
            ]
            spec["revertOnDeletion"] = True
            target["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
                {"configMapRef": {"name": "web-config"}},
                {"secretRef": {"name": "web-env"}},
            ]
            w.api.store.seed(config_map("web-config", mode="v1"), secret("web-env", key="v1"))
        else:
            # Only the template: the fake Prometheus answers the kubernetes provider's builtins.
            del analysis["webhooks"]
            analysis["metrics"] = [m for m in analysis["metrics"] if "templateRef" in m]
        if provider == "istio":
            spec["autoscalerRef"] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": name,
            }
            spec["service"]["trafficPolicy"] = {"tls": {"mode": "ISTIO_MUTUAL"}}
            w.api.store.seed(
                hpa(name, 4),
                {  # left over from an earlier setup: reconcile corrects its trafficPolicy
                    "apiVersion": "networking.istio.io/v1beta1",
                    "kind": "DestinationRule",
                    "metadata": {"name": f"{name}-canary", "namespace": NS},
                    "spec": {
                        "host": f"{name}-canary",
                        "trafficPolicy": {"tls": {"mode": "DISABLE"}},
                    },
                },
            )
        if provider == "nginx":
            spec["ingressRef"] = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "name": name,
            }
            w.api.store.seed(ingress(name))
        if provider.startswith("gatewayapi"):
            spec["service"]["gatewayRefs"] = GATEWAYS
        w.api.store.seed(target, canary)


def ingress(name: str) -> Body:
    backend = {"service": {"name": name, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": f"{name}.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def accept_http_routes(w: World) -> None:
    """A stand-in for the gateway controller: every HTTPRoute is Accepted by its parents in the
    very write that changes it (at its current generation)."""
    store = w.api.store
    commit = store._commit

    def accepting(group: str, plural: str, key: tuple[str, str], body: Body, type_: str) -> None:
        if (group, plural) == ("gateway.networking.k8s.io", "httproutes"):
            generation = body["metadata"].get("generation", 1)
            body["status"] = {
                "parents": [
                    {
                        "parentRef": ref,
                        "controllerName": "example.com/gateway",
                        "conditions": [
                            {
                                "type": "Accepted",
                                "status": "True",
                                "reason": "Accepted",
                                "observedGeneration": generation,
                            }
                        ],
                    }
                    for ref in (body.get("spec") or {}).get("parentRefs") or ()
                ]
            }
        commit(group, plural, key, body, type_)

    store._commit = accepting  # type: ignore[method-assign]


def phases(w: World) -> dict[str, str]:
    return {name: w.phase(name) for name in PROVIDERS}


def all_in(w: World, phase: str) -> bool:
    return all(p == phase for p in phases(w).values())


def describe(w: World) -> dict[str, object]:
    """Each Canary's phase, weight, failed checks and last condition message (for a failure)."""
    out: dict[str, object] = {}
    for name in PROVIDERS:
        status = w.status(name)
        conditions = status.get("conditions") or [{}]
        out[name] = (
            status.get("phase"),
            status.get("canaryWeight"),
            status.get("failedChecks"),
            conditions[-1].get("message"),
        )
    return out


#: The cached kinds other than Canaries, as (group, version, plural): their cluster-wide LISTs
#: fail at the cold start.
COLD = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("", "v1", "configmaps"),
    ("flagger.app", "v1beta1", "metrictemplates"),
    ("flagger.app", "v1beta1", "alertproviders"),
)


def list_path(group: str, version: str, plural: str) -> str:
    return f"/apis/{group}/{version}/{plural}" if group else f"/api/{version}/{plural}"


@dataclass
class Recorded:
    calls: list[Call]
    other: list[str]  # requests for anything but an API resource
    phases: dict[str, list[str]]  # canary -> the phases seen after each scenario
    alerts: int
    finalizers: list[str]
    lease_holder: str | None


async def exercise(directory: Path) -> Recorded:
    async with open_world(directory, "rbac") as w:
        accept_http_routes(w)
        seed(w)
        seen: dict[str, list[str]] = {name: [] for name in PROVIDERS}

        def note() -> None:
            for name, phase in phases(w).items():
                seen[name].append(phase)

        # Cold start: the caches of everything but Canaries cannot LIST yet.
        for kind in COLD:
            w.api.fail_next(10**6, method="GET", path=list_path(*kind), status=500)
        run = await start(w, identity=IDENTITY, leader_elect=True)
        try:
            await w.time.run_until(
                lambda: all_in(w, "Initialized"), also=alive(run), state=lambda: describe(w)
            )
            note()
            w.api.clear_faults()
            await w.time.advance(60)  # the caches' back-off (at most 30 s) ends: they sync

            # A new revision everywhere; the tracked config and the HPA change with it.
            w.api.store.put(config_map("web-config", mode="v2"))
            w.api.store.put(secret("web-env", key="v2"))
            w.api.store.put(hpa("web-istio", 6))
            for name in PROVIDERS:
                await w.set_image(name, V2)
            await w.time.run_until(
                lambda: all_in(w, "Succeeded"), also=alive(run), state=lambda: describe(w)
            )
            note()

            # Rollback: every check fails.
            w.prom.health = lambda namespace, target: False
            for name in PROVIDERS:
                await w.set_image(name, V3)
            await w.time.run_until(
                lambda: all_in(w, "Failed"), also=alive(run), state=lambda: describe(w)
            )
            note()

            # revertOnDeletion: `kubectl delete canary web` (the API server only marks it while
            # it carries a finalizer).
            canary = w.canary("web")
            canary["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            w.api.store.put(canary)
            # Removing the last finalizer of a marked object deletes it, as on the API server.
            await w.time.run_until(
                lambda: w.api.store.get("canaries.flagger.app", NS, "web") is None,
                also=alive(run),
            )
            finalizers = [str(f) for f in canary["metadata"].get("finalizers") or ()]
            last_status = [
                r.body["status"]
                for r in w.api.log
                if (r.verb, r.resource, r.name) == ("patch", "canaries/status", "web")
            ][-1]
            seen["web"].append(last_status["phase"])
            await w.time.advance(60)
        finally:
            assert await run.shutdown() == 0  # the leader hands its Lease back
        lease = w.api.store.get(
            "leases.coordination.k8s.io", LEASE_NS, "canary-engine-leader-election"
        )
        mine = [r for r in w.api.log if r.authorization == run.token]
        return Recorded(
            calls=[Call.of(r) for r in mine if r.path.startswith(("/api/", "/apis/"))],
            other=[
                f"{r.method} {r.path}" for r in mine if not r.path.startswith(("/api/", "/apis/"))
            ],
            phases=seen,
            alerts=sum(name == "on-call" for name, _ in w.prom.hooks),
            finalizers=finalizers,
            lease_holder=((lease or {}).get("spec") or {}).get("holderIdentity"),
        )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    # One run for every test of the module (it takes a few seconds of real time). The controller
    # waits at most CACHE_SYNC_TIMEOUT for its caches before ticking; shortened for the cold start.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.shell.run, "CACHE_SYNC_TIMEOUT", 0.2)
        yield asyncio.run(exercise(tmp_path_factory.mktemp("rbac")))


# ---------------------------------------------------------------------------- the tests

#: What the controller sends, per resource: the table in config/deploy/README.md.
EXPECTED_CALLS: Mapping[str, list[str]] = {
    # the watch-fed cache (list + watch); get while a cache has not synced (the cold start)
    "alertproviders.flagger.app": ["get", "list", "watch"],
    "metrictemplates.flagger.app": ["get", "list", "watch"],
    # patch: finalizer.flagger.app; get: the Canary read from the API server after a status write
    # conflicted (adding the finalizer changed its resourceVersion), never from a stale cache
    "canaries.flagger.app": ["get", "list", "patch", "watch"],
    "canaries/status.flagger.app": ["patch"],
    "deployments.apps": ["create", "get", "list", "patch", "watch"],
    "services": ["create", "get", "list", "patch", "watch"],
    "configmaps": ["create", "get", "list", "patch", "watch"],
    "horizontalpodautoscalers.autoscaling": ["create", "get", "list", "patch", "watch"],
    "secrets": ["create", "get", "patch"],  # each by name: never listed, watched or cached
    "events": ["create", "patch"],  # patch: an identical event counted again (count, lastTimestamp)
    # routers: each object read by name, no cache
    "ingresses.networking.k8s.io": ["create", "get", "patch"],
    "virtualservices.networking.istio.io": ["create", "get", "patch"],
    "destinationrules.networking.istio.io": ["create", "get", "patch"],
    "httproutes.gateway.networking.k8s.io": ["create", "get", "patch"],
    "leases.coordination.k8s.io": ["create", "get", "patch"],  # in flux-system only
}


def test_the_scenarios_took_the_paths_they_are_meant_to(recorded: Recorded) -> None:
    for name, seen in recorded.phases.items():
        assert seen[:3] == ["Initialized", "Succeeded", "Failed"], (name, seen)
    assert recorded.phases["web"][3] == "Terminating"
    assert recorded.finalizers == ["finalizer.flagger.app"]
    assert recorded.alerts > 0  # posted to the address from the AlertProvider's Secret
    assert recorded.lease_holder == ""  # released on shutdown
    assert recorded.other == []
    # the cold start read through the API (GETs), then the caches took over (LIST + WATCH)
    calls = {(c.verb, c.group, c.resource) for c in recorded.calls}
    for group, _, plural in COLD:
        assert {("get", group, plural), ("list", group, plural), ("watch", group, plural)} <= calls
    # the Secrets read are the referenced ones, by name, in the Canaries' namespace
    secrets = [c for c in recorded.calls if c.resource == "secrets"]
    assert {c.namespace for c in secrets} == {NS}
    assert {c.name for c in secrets if c.verb != "create"} == {
        "prom-auth",  # the MetricTemplate's secretRef
        "on-call-hook",  # the AlertProvider's secretRef
        "web-env",  # tracked by the kubernetes Canary's target
        "web-env-primary",  # its copy
    }
    leases = {(c.namespace, c.name) for c in recorded.calls if c.resource == "leases"}
    assert leases == {(LEASE_NS, None), (LEASE_NS, "canary-engine-leader-election")}


def test_the_recorded_calls(recorded: Recorded) -> None:
    table: dict[str, set[str]] = {}
    for call in recorded.calls:
        resource = f"{call.resource}.{call.group}" if call.group else call.resource
        table.setdefault(resource, set()).add(call.verb)
    assert {r: sorted(v) for r, v in table.items()} == EXPECTED_CALLS


def test_every_call_the_controller_sends_is_allowed(recorded: Recorded) -> None:
    grants = rbac_grants()
    denied = sorted({str(c) for c in recorded.calls if not any(g.allows(c) for g in grants)})
    assert denied == [], "calls config/deploy/rbac.yaml does not allow:\n" + "\n".join(denied)


def routers_checked_elsewhere() -> set[tuple[str, str]]:
    """(API group, resource) of the router modules no Canary here uses: each is driven over the
    fake API server by tests/traffic/test_router_rbac.py, which checks both directions for them."""
    from traffic import router_module, supported_providers

    used = {router_module(p) for p in PROVIDERS.values()}
    return {
        (kind.group, kind.plural)
        for provider in supported_providers()
        if (module := router_module(provider)) is not None and module not in used
        for kind in module.kinds
    }


def test_every_rule_is_exercised_or_explained(recorded: Recorded) -> None:
    grants = rbac_grants()
    # and KEDA ScaledObjects, DaemonSets: tests/traffic/test_autoscaler_keda.py and
    # test_workload_daemonset.py check their calls both ways
    elsewhere = routers_checked_elsewhere() | {("keda.sh", "scaledobjects"), ("apps", "daemonsets")}
    unused = sorted(
        str(g)
        for g in grants
        if g.key not in NOT_EXERCISED
        and (g.group, g.resource) not in elsewhere
        and not any(g.allows(c) for c in recorded.calls)
    )
    assert unused == [], "rules no call needs (drop them, or say why in NOT_EXERCISED):\n" + (
        "\n".join(unused)
    )
    # the explanations name rules that exist and that really are not exercised
    keys = {g.key for g in grants}
    assert [k for k in NOT_EXERCISED if k not in keys] == []
    exercised = [
        k
        for k in NOT_EXERCISED
        if any(g.key == k and g.allows(c) for g in grants for c in recorded.calls)
    ]
    assert exercised == [], f"exercised after all: drop them from NOT_EXERCISED: {exercised}"


def test_the_rbac_check_itself() -> None:
    """The evaluator follows Kubernetes' rules: namespaced Roles only in their namespace,
    resourceNames only for requests that name an object, subresources as their own resource."""
    lease = "canary-engine-leader-election"
    grants = rbac_grants()

    def allowed(verb: str, group: str, resource: str, ns: str | None, name: str | None) -> bool:
        return any(g.allows(Call(verb, group, resource, ns, name)) for g in grants)

    coordination = "coordination.k8s.io"
    assert allowed("patch", coordination, "leases", LEASE_NS, lease)
    assert allowed("create", coordination, "leases", LEASE_NS, None)
    assert not allowed("patch", coordination, "leases", LEASE_NS, "someone-else")
    assert not allowed("patch", coordination, "leases", NS, lease)
    assert not allowed("get", coordination, "leases", LEASE_NS, None)  # that is a list
    assert allowed("patch", "flagger.app", "canaries/status", NS, "web")
    assert not allowed("update", "flagger.app", "canaries/status", NS, "web")
    assert not allowed("list", "", "secrets", None, None)
    assert not allowed("delete", "apps", "deployments", NS, "web")


async def test_secrets_are_read_by_name_even_when_asked_to_cache_them(tmp_path: Path) -> None:
    """``open_kube_cluster`` never caches Secrets (``NEVER_CACHED``): no LIST or WATCH of every
    Secret in scope, each read is a GET of the Secret asked for."""
    async with serve_kube_api() as api:
        api.store.seed(secret("web-env", key="v1"), config_map("web-config", mode="v1"))
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        async with open_kube_cluster(
            str(kubeconfig), sleep=asyncio.sleep, cache_kinds=(CONFIGMAP, SECRET)
        ) as cluster:
            await cluster.wait_synced()
            assert cluster.cached_kinds == {CONFIGMAP}
            for _ in range(2):
                body = await cluster.get(ObjectRef(SECRET, NS, "web-env"))
                assert body is not None and body["data"] == {"key": b64("v1")}
            assert await cluster.get(ObjectRef(SECRET, NS, "missing")) is None
            assert await cluster.get(ObjectRef(CONFIGMAP, NS, "web-config")) is not None
        sent = [(r.verb, r.resource, r.name) for r in api.log]
    assert [s for s in sent if s[1] == "secrets"] == [
        ("get", "secrets", "web-env"),
        ("get", "secrets", "web-env"),
        ("get", "secrets", "missing"),
    ]
    assert ("get", "configmaps", "web-config") not in sent  # from the cache


async def test_scoped_to_namespaces_it_sends_no_cluster_wide_request(tmp_path: Path) -> None:
    """With ``--namespace`` every request names a namespace, so RoleBindings of the ClusterRole
    in those namespaces can replace the ClusterRoleBinding (config/deploy/README.md)."""
    async with open_world(tmp_path, "scoped") as w:
        accept_http_routes(w)
        seed(w)
        run = await start(w, identity=IDENTITY, leader_elect=True, namespaces=(NS,))
        try:
            await w.time.run_until(
                lambda: all_in(w, "Initialized"), also=alive(run), state=lambda: describe(w)
            )
            for name in PROVIDERS:
                await w.set_image(name, V2)
            await w.time.run_until(
                lambda: all_in(w, "Succeeded"), also=alive(run), state=lambda: describe(w)
            )
        finally:
            assert await run.shutdown() == 0
        calls = [Call.of(r) for r in w.api.log if r.authorization == run.token]
    assert {c.namespace for c in calls} == {NS, LEASE_NS}
    assert {c.resource for c in calls if c.namespace == LEASE_NS} == {"leases"}
