"""kube-apiserver's validation of built-in kinds, as the test API server applies it
(tests/builtin_validation.py): a valid object of each kind canary-engine writes passes, and each
rule refuses what the real server refuses, with its message; over HTTP, a refused write answers
422 ``Invalid`` and stores nothing, a Service gets a clusterIP that an update leaving it out
keeps, and ``builtins=False`` stores anything.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.builtin_validation import invalid_message, normalize_service, validate
from tests.kubeapi import FakeKubeApi, serve_kube_api

pytestmark = pytest.mark.timeout(20)

Body = dict[str, Any]


def deployment() -> Body:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {"app": "podinfo-primary"},
            "ownerReferences": [
                {
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "name": "podinfo",
                    "uid": "5c6f8a0e-0000-4000-8000-000000000001",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "podinfo-primary"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo-primary"}},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                            "ports": [{"name": "http", "containerPort": 9898}],
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/podinfo"}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "podinfo-primary"}}],
                },
            },
        },
    }


def daemonset() -> Body:
    body = deployment()
    body["kind"] = "DaemonSet"
    del body["spec"]["replicas"]
    return body


def service() -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo-canary", "namespace": "test"},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "podinfo"},
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": "http"},
                {"name": "grpc", "port": 9999, "targetPort": 9999},
            ],
        },
    }


def hpa() -> Body:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo-primary", "namespace": "test"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 99},
                    },
                }
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
                }
            },
        },
    }


def event() -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "podinfo.17a2b3c4d5e6f708", "namespace": "test"},
        "involvedObject": {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": "podinfo",
            "namespace": "test",
        },
        "reason": "Synced",
        "message": "Initialization done! podinfo.test",
        "type": "Normal",
        "source": {"component": "flagger"},
        "count": 1,
    }


def lease() -> Body:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "canary-engine", "namespace": "flagger-system"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0},
    }


def ingress() -> Body:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "podinfo-canary", "namespace": "test"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "podinfo-canary", "port": {"number": 80}}
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }


def config_map() -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "podinfo-config-env-primary", "namespace": "test"},
        "data": {"color": "blue", "output.json": "{}"},
    }


def secret() -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "podinfo-tls-primary", "namespace": "test"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
    }


RESOURCES: dict[str, tuple[str, str, Callable[[], Body]]] = {
    "deployment": ("apps", "deployments", deployment),
    "daemonset": ("apps", "daemonsets", daemonset),
    "service": ("", "services", service),
    "hpa": ("autoscaling", "horizontalpodautoscalers", hpa),
    "event": ("", "events", event),
    "lease": ("coordination.k8s.io", "leases", lease),
    "ingress": ("networking.k8s.io", "ingresses", ingress),
    "configmap": ("", "configmaps", config_map),
    "secret": ("", "secrets", secret),
}


def errors_of(kind: str, change: Callable[[Body], object]) -> list[str]:
    group, plural, make = RESOURCES[kind]
    body = make()
    change(body)
    if plural == "services":
        normalize_service(body, None)
    return [str(e) for e in validate(group, plural, body)]


@pytest.mark.parametrize("kind", sorted(RESOURCES))
def test_a_valid_object_of_each_kind_passes(kind: str) -> None:
    assert errors_of(kind, lambda body: None) == []


def _template(body: Body) -> Any:
    return body["spec"]["template"]


def _container(body: Body) -> Any:
    return body["spec"]["template"]["spec"]["containers"][0]


def _set(path: str, value: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(path: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


REFUSED: list[tuple[str, Callable[[Body], object], str]] = [
    # ValidateObjectMeta: names, labels, annotations, owner references, finalizers
    ("deployment", _set("metadata.name", "Podinfo"), 'metadata.name: Invalid value: "Podinfo"'),
    ("service", _set("metadata.name", "1podinfo"), "a DNS-1035 label must consist of"),
    ("service", _set("metadata.name", "p" * 64), "must be no more than 63 characters"),
    ("deployment", _set("metadata.labels", {"app": "x" * 64}), "metadata.labels: Invalid value"),
    ("deployment", _set("metadata.labels", {"app": "-x"}), "a valid label must be an empty"),
    ("configmap", _set("metadata.labels", {"a/b/c": "x"}), "a qualified name must consist"),
    (
        "configmap",
        _set("metadata.annotations", {"big": "x" * (256 * 1024)}),
        "metadata.annotations: Too long: must have at most 262144 bytes",
    ),
    (
        "lease",
        _set("metadata.ownerReferences", [{"apiVersion": "v1", "kind": "Pod", "name": "a"}]),
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ),
    (
        "secret",
        _set(
            "metadata.ownerReferences",
            [
                {
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "name": n,
                    "uid": n,
                    "controller": True,
                }
                for n in ("a", "b")
            ],
        ),
        'Only one reference can have Controller set to true. Found "true" in references for '
        "Canary/a and Canary/b",
    ),
    ("deployment", _set("metadata.finalizers", ["keep"]), "neither a standard finalizer name"),
    # Deployments: selector, template, containers, strategy, bounds
    ("deployment", _delete("spec.selector"), "spec.selector: Required value"),
    ("deployment", _set("spec.selector", {}), "empty selector is invalid for deployment"),
    (
        "deployment",
        _set("spec.template.metadata.labels", {"app": "podinfo"}),
        'spec.template.metadata.labels: Invalid value: {"app":"podinfo"}: `selector` does '
        "not match template `labels`",
    ),
    (
        "deployment",
        _set("spec.selector.matchLabels", {"app": "p" * 64}),
        "spec.selector.matchLabels",
    ),
    (
        "deployment",
        _set(
            "spec.selector.matchExpressions",
            [{"key": "app", "operator": "In", "values": ["x" * 70]}],
        ),
        "spec.selector.matchExpressions[0].values[0]: Invalid value",
    ),
    (
        "deployment",
        _set("spec.template.spec.containers", []),
        "spec.template.spec.containers: Required value",
    ),
    (
        "deployment",
        lambda b: _container(b).pop("image"),
        "spec.template.spec.containers[0].image: Required value",
    ),
    (
        "deployment",
        lambda b: _container(b).update(name="PodInfo"),
        'containers[0].name: Invalid value: "PodInfo"',
    ),
    (
        "deployment",
        lambda b: _template(b)["spec"]["containers"].append(copy.deepcopy(_container(b))),
        'spec.template.spec.containers[1].name: Duplicate value: "podinfod"',
    ),
    (
        "deployment",
        lambda b: _container(b)["ports"][0].update(name="http-metrics-port"),
        "must be no more than 15 characters",
    ),
    (
        "deployment",
        lambda b: _container(b)["ports"][0].update(containerPort=70000),
        "must be between 1 and 65535",
    ),
    (
        "deployment",
        lambda b: _container(b)["volumeMounts"][0].update(name="missing"),
        'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "missing"',
    ),
    (
        "deployment",
        _set("spec.template.spec.volumes.0", {"name": "config"}),
        "must specify a volume type",
    ),
    (
        "deployment",
        _set("spec.replicas", -1),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ),
    ("deployment", _set("spec.revisionHistoryLimit", -1), "spec.revisionHistoryLimit"),
    (
        "deployment",
        _set("spec.minReadySeconds", 600),
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
    ),
    (
        "deployment",
        _set(
            "spec.strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
        ),
        "may not be 0 when `maxSurge` is 0",
    ),
    (
        "deployment",
        _set("spec.strategy", {"type": "Recreate", "rollingUpdate": {}}),
        "may not be specified when",
    ),
    ("deployment", _set("spec.strategy", {"type": "Canary"}), "spec.strategy: Unsupported value"),
    (
        "deployment",
        _set("spec.template.spec.restartPolicy", "Never"),
        "spec.template.spec.restartPolicy",
    ),
    (
        "deployment",
        _set(
            "spec.template.spec.affinity",
            {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "a" * 70}}}
                    ]
                }
            },
        ),
        "topologyKey: Required value: can not be empty",
    ),
    (
        "deployment",
        _set(
            "spec.template.spec.topologySpreadConstraints",
            [
                {
                    "maxSkew": 1,
                    "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": "a" * 70}},
                }
            ],
        ),
        "topologySpreadConstraints[0].labelSelector.matchLabels: Invalid value",
    ),
    # DaemonSets
    ("daemonset", _delete("spec.selector"), "`selector` does not match template `labels`"),
    (
        "daemonset",
        _set(
            "spec.updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
        ),
        "may not be set when maxUnavailable is non-zero",
    ),
    # Services
    ("service", _set("spec.ports", []), "spec.ports: Required value"),
    ("service", lambda b: b["spec"]["ports"][0].pop("name"), "spec.ports[0].name: Required value"),
    (
        "service",
        lambda b: b["spec"]["ports"][1].update(name="http"),
        'spec.ports[1].name: Duplicate value: "http"',
    ),
    (
        "service",
        lambda b: b["spec"]["ports"][0].update(port=0),
        "spec.ports[0].port: Invalid value: 0",
    ),
    (
        "service",
        lambda b: b["spec"]["ports"][0].update(protocol="HTTP"),
        "spec.ports[0].protocol: Unsupported value",
    ),
    (
        "service",
        lambda b: b["spec"]["ports"][0].update(targetPort="http--x"),
        "must not contain consecutive hyphens",
    ),
    (
        "service",
        lambda b: b["spec"]["ports"][0].update(targetPort="9898"),
        "must contain at least one letter",
    ),
    (
        "service",
        lambda b: b["spec"]["ports"][1].update(port=9898),
        "spec.ports[1]: Duplicate value",
    ),
    ("service", _set("spec.selector", {"app": "p" * 64}), "spec.selector: Invalid value"),
    (
        "service",
        lambda b: b["spec"]["ports"][0].update(nodePort=30000),
        "may not be used when `type` is 'ClusterIP'",
    ),
    ("service", _set("spec.type", "NodeBalancer"), "spec.type: Unsupported value"),
    (
        "service",
        _set("spec.trafficDistribution", "Nearest"),
        "spec.trafficDistribution: Unsupported value",
    ),
    (
        "service",
        _set("spec.externalTrafficPolicy", "Local"),
        "may only be set for externally-accessible",
    ),
    # HPAs
    (
        "hpa",
        _set("spec.minReplicas", 0),
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
    ),
    ("hpa", _set("spec.maxReplicas", 1), "must be greater than or equal to `minReplicas`"),
    (
        "hpa",
        _delete("spec.maxReplicas"),
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
    ),
    (
        "hpa",
        _set("spec.scaleTargetRef", {"kind": "Deployment"}),
        "spec.scaleTargetRef.name: Required value",
    ),
    (
        "hpa",
        lambda b: b["spec"]["metrics"][0].update(type="Pods"),
        "must populate information for the given metric",
    ),
    (
        "hpa",
        lambda b: b["spec"]["metrics"][0]["resource"]["target"].update(averageValue="100m"),
        "may not set both a target raw value and a target utilization",
    ),
    (
        "hpa",
        _set(
            "spec.behavior.scaleDown.policies",
            [{"type": "Percent", "value": 10, "periodSeconds": 3600}],
        ),
        "must be less than or equal to 1800",
    ),
    # core/v1 Events (legacyValidateEvent)
    (
        "event",
        _set("involvedObject.namespace", "other"),
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace',
    ),
    (
        "event",
        _set("metadata.name", "a/b"),
        "metadata.name: Invalid value: \"a/b\": may not contain '/'",
    ),
    # Leases
    (
        "lease",
        _set("spec.leaseDurationSeconds", 0),
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    ),
    ("lease", _set("spec.leaseTransitions", -1), "must be greater than or equal to 0"),
    # Ingresses
    ("ingress", _set("spec.rules", []), "either `defaultBackend` or `rules` must be specified"),
    ("ingress", _delete("spec.rules.0.http.paths.0.pathType"), "pathType must be specified"),
    ("ingress", _set("spec.rules.0.http.paths.0.path", "/a//b"), "must not contain '//'"),
    ("ingress", _set("spec.rules.0.host", "10.0.0.1"), "must be a DNS name, not an IP address"),
    (
        "ingress",
        _set("spec.rules.0.http.paths.0.backend", {"service": {"name": "podinfo", "port": {}}}),
        "port name or number is required",
    ),
    (
        "ingress",
        _set("metadata.annotations", {"kubernetes.io/ingress.class": "contour"}),
        "must match `ingressClassName` when both are specified",
    ),
    # ConfigMaps and Secrets
    (
        "configmap",
        _set("data", {"a b": "x"}),
        'data[a b]: Invalid value: "a b": a valid config key',
    ),
    (
        "configmap",
        _set("binaryData", {"color": "Ymx1ZQ=="}),
        "duplicate of key present in binaryData",
    ),
    ("secret", lambda b: b["data"].pop("tls.key"), "data[tls.key]: Required value"),
]


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    REFUSED,
    ids=[f"{kind}-{i}" for i, (kind, _, _) in enumerate(REFUSED)],
)
def test_each_rule_refuses_what_the_real_server_refuses(
    kind: str, change: Callable[[Body], object], expected: str
) -> None:
    errors = errors_of(kind, change)
    assert any(expected in e for e in errors), errors


def test_the_message_is_the_api_servers() -> None:
    bad = deployment()
    bad["spec"]["selector"]["matchLabels"]["app"] = "other"
    bad["spec"]["replicas"] = -1
    errors = validate("apps", "deployments", bad)
    assert invalid_message("Deployment", "apps", "podinfo-primary", errors) == (
        'Deployment.apps "podinfo-primary" is invalid: [spec.replicas: Invalid value: -1: must '
        "be greater than or equal to 0, spec.template.metadata.labels: Invalid value: "
        '{"app":"podinfo-primary"}: `selector` does not match template `labels`]'
    )
    one = validate("", "services", {"metadata": {"name": "x", "namespace": "t"}, "spec": {}})
    assert invalid_message("Service", "", "x", one) == (
        'Service "x" is invalid: spec.ports: Required value'
    )


def test_a_deployment_or_daemonset_selector_is_immutable() -> None:
    for group, plural, make in (RESOURCES["deployment"], RESOURCES["daemonset"]):
        old, new = make(), make()
        new["spec"]["selector"]["matchLabels"]["track"] = "stable"
        new["spec"]["template"]["metadata"]["labels"]["track"] = "stable"
        assert validate(group, plural, new) == []  # fine on create
        errors = [str(e) for e in validate(group, plural, new, old)]
        assert errors == [
            'spec.selector: Invalid value: {"matchLabels":{"app":"podinfo-primary",'
            '"track":"stable"}}: field is immutable'
        ]
        same = make()
        same["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1"
        assert validate(group, plural, same, old) == []


def test_a_service_keeps_its_cluster_ip_unless_an_update_changes_it() -> None:
    old = service()
    old["spec"]["clusterIP"] = "10.96.0.10"
    normalize_service(old, None)
    assert old["spec"]["clusterIPs"] == ["10.96.0.10"]
    # patchAllocatedValues: an update that leaves the clusterIP out gets the allocated one
    omitted = service()
    normalize_service(omitted, old)
    assert omitted["spec"]["clusterIP"] == "10.96.0.10"
    assert validate("", "services", omitted, old) == []
    moved = service()
    moved["spec"]["clusterIP"] = "10.96.0.11"
    normalize_service(moved, old)
    assert [str(e) for e in validate("", "services", moved, old)] == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set'
    ]
    headless = service()
    headless["spec"]["clusterIP"] = "None"
    normalize_service(headless, old)
    assert any("may not change once set" in str(e) for e in validate("", "services", headless, old))


def test_an_hpa_already_at_zero_may_stay_there_and_a_secret_keeps_its_type() -> None:
    old, new = hpa(), hpa()
    old["spec"]["minReplicas"] = new["spec"]["minReplicas"] = 0
    new["spec"]["metrics"] = [
        {
            "type": "External",
            "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}},
        }
    ]
    assert validate("autoscaling", "horizontalpodautoscalers", new, old) == []
    assert validate("autoscaling", "horizontalpodautoscalers", new) != []
    before, after = secret(), secret()
    after["type"] = "Opaque"
    assert [str(e) for e in validate("", "secrets", after, before)] == [
        'type: Invalid value: "Opaque": field is immutable'
    ]


# ---------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with serve_kube_api() as server:
        yield server


@pytest.fixture
async def http(api: FakeKubeApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url, timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any, merge: bool = False
) -> tuple[int, Body]:
    headers = {"Content-Type": "application/merge-patch+json" if merge else "application/json"}
    async with http.request(method, path, data=json.dumps(body), headers=headers) as r:
        return r.status, await r.json()


DEPLOYMENTS = "/apis/apps/v1/namespaces/test/deployments"
SERVICES = "/api/v1/namespaces/test/services"


async def test_a_refused_write_answers_422_invalid_and_stores_nothing(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "podinfo"}
    status, answer = await call(http, "POST", DEPLOYMENTS, bad)
    assert status == 422
    assert answer["reason"] == "Invalid"
    assert answer["message"].startswith('Deployment.apps "podinfo-primary" is invalid: ')
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: {"app":"podinfo"}: `selector` does not match template '
            "`labels`",
            "field": "spec.template.metadata.labels",
        }
    ]
    assert api.store.get("deployments.apps", "test", "podinfo-primary") is None

    status, _ = await call(http, "POST", DEPLOYMENTS, deployment())
    assert status == 201
    path = f"{DEPLOYMENTS}/podinfo-primary"
    moved = {"spec": {"selector": {"matchLabels": {"app": "other"}}}}
    status, answer = await call(http, "PATCH", path, moved, merge=True)
    assert status == 422
    assert "spec.selector: Invalid value" in answer["message"]
    stored = api.store.get("deployments.apps", "test", "podinfo-primary")
    assert stored is not None
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}


async def test_a_service_is_given_a_cluster_ip_that_an_update_keeps(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    status, created = await call(http, "POST", SERVICES, service())
    assert status == 201
    ip = created["spec"]["clusterIP"]
    assert created["spec"]["clusterIPs"] == [ip]
    path = f"{SERVICES}/podinfo-canary"
    # a merge patch that removes the clusterIP (a PUT of a body without it): the old one is kept
    status, patched = await call(
        http, "PATCH", path, {"spec": {"clusterIP": None, "clusterIPs": None}}, merge=True
    )
    assert status == 200
    assert (patched["spec"]["clusterIP"], patched["spec"]["clusterIPs"]) == (ip, [ip])
    status, answer = await call(
        http, "PATCH", path, {"spec": {"clusterIP": "10.0.0.99"}}, merge=True
    )
    assert status == 422
    assert "may not change once set" in answer["message"]
    second = service()
    second["metadata"]["name"] = "podinfo-primary"
    status, other = await call(http, "POST", SERVICES, second)
    assert status == 201
    assert other["spec"]["clusterIP"] != ip


async def test_builtins_false_stores_objects_the_real_server_would_refuse() -> None:
    async with (
        serve_kube_api(builtins=False) as api,
        aiohttp.ClientSession(api.url, timeout=aiohttp.ClientTimeout(total=5)) as http,
    ):
        toy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "toy"}}
        status, _ = await call(http, "POST", DEPLOYMENTS, toy)
        assert status == 201


def test_switching_a_service_to_cluster_ip_drops_the_node_ports_it_left_alone() -> None:
    """dropTypeDependentFields: an update to type ClusterIP that keeps the node ports (and the
    health check port) the Service had is accepted with them wiped; a net-new node port is
    refused."""
    old = service()
    old["spec"].update(
        type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=32001
    )
    old["spec"]["ports"][0]["nodePort"] = 31001
    old["spec"]["clusterIP"] = "10.96.0.10"
    normalize_service(old, None)
    kept = copy.deepcopy(old)
    kept["spec"].update(type="ClusterIP", externalTrafficPolicy=None)
    del kept["spec"]["externalTrafficPolicy"]
    normalize_service(kept, old)
    assert "nodePort" not in kept["spec"]["ports"][0]
    assert "healthCheckNodePort" not in kept["spec"]
    assert validate("", "services", kept, old) == []
    added = copy.deepcopy(kept)
    added["spec"]["ports"][1]["nodePort"] = 31002
    normalize_service(added, old)
    assert [str(e) for e in validate("", "services", added, old)] == [
        "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    ]


async def test_a_label_that_is_not_a_string_does_not_decode(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    bad = deployment()
    bad["metadata"]["labels"]["replicas"] = 2
    status, answer = await call(http, "POST", DEPLOYMENTS, bad)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"].startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "number into Go struct field metadata.labels of type string"
    )
