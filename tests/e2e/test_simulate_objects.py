"""`simulate` type-checks the Kubernetes objects of the Canary file as an API server would.

A Deployment, HPA, Service, ConfigMap or Secret whose fields have the wrong type is bad input
(exit 2, the file, the object and the field named), never a traceback from deep in traffic/ with
exit 1, which means "rolled back" (engine.cli._object_shapes).
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis import load_recording
from config import SpecError, load_manifests, read_documents
from engine.cli import main
from engine.cli._object_shapes import object_problems
from engine.cli.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
HEALTHY = EXAMPLES / "flagger-docs" / "healthy.csv"

BASE = list(
    yaml.safe_load_all(
        """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: app, namespace: test}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: app}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 5, maxWeight: 30, stepWeight: 15}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: test
  labels: {app: app}
  annotations: {a: b}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}, annotations: {x: y}}
    spec:
      containers:
      - name: app
        image: app:1
        ports: [{name: http, containerPort: 8080}]
        env:
        - name: A
          valueFrom: {configMapKeyRef: {name: cfg, key: k}}
        envFrom: [{secretRef: {name: sec}}]
      volumes:
      - name: v
        configMap: {name: cfg}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: test}
data: {k: v}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: test}
data: {k: dg==}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: app, namespace: test}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  minReplicas: 1
  maxReplicas: 4
---
apiVersion: v1
kind: Service
metadata: {name: app-extra, namespace: test}
spec:
  selector: {app: app}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: other, namespace: test}
spec:
  scaleTargetRef: {name: other}
  minReplicaCount: 1
  triggers: [{type: cpu, metadata: {value: "80"}}]
"""
    )
)
DEPLOYMENT, CONFIGMAP, SECRET, HPA, SERVICE, SCALED_OBJECT = range(1, 7)
CONTAINER = ("spec", "template", "spec", "containers", 0)

#: (document, field path, the value put there, what the message must say)
MALFORMED: list[tuple[int, tuple[Any, ...], Any, str]] = [
    (DEPLOYMENT, ("metadata",), ["app"], "[Deployment/?] metadata: must be a mapping, got ['app']"),
    (DEPLOYMENT, ("metadata", "name"), None, "[Deployment/?] metadata.name: required field is"),
    (DEPLOYMENT, ("metadata", "name"), 7, "[Deployment/?] metadata.name: must be a string, got 7"),
    (DEPLOYMENT, ("metadata", "labels"), {1: "x"}, "metadata.labels: key 1 must be a string"),
    (DEPLOYMENT, ("metadata", "annotations"), "x", "metadata.annotations: must be a mapping of"),
    (DEPLOYMENT, ("spec",), "x", "[Deployment/app] spec: must be a mapping, got 'x'"),
    (DEPLOYMENT, ("spec", "replicas"), "x", "spec.replicas: must be a whole number, got 'x'"),
    (DEPLOYMENT, ("spec", "replicas"), "3", "got '3' (a quoted string; write it without quotes)"),
    (DEPLOYMENT, ("spec", "replicas"), True, "spec.replicas: must be a whole number, got True"),
    (DEPLOYMENT, ("spec", "replicas"), 1.5, "spec.replicas: must be a whole number, got 1.5"),
    (DEPLOYMENT, ("spec", "replicas"), -1, "spec.replicas: must be >= 0, got -1"),
    (DEPLOYMENT, ("spec", "replicas"), 2**40, "spec.replicas: must be <= 2147483647"),
    (DEPLOYMENT, ("spec", "selector"), [], "spec.selector: must be a mapping, got []"),
    (DEPLOYMENT, ("spec", "selector", "matchLabels", "app"), 1, "matchLabels.app: must be a str"),
    (DEPLOYMENT, ("spec", "template"), "x", "[Deployment/app] spec.template: must be a mapping"),
    (DEPLOYMENT, ("spec", "template", "metadata"), 1, "spec.template.metadata: must be a mapping"),
    (DEPLOYMENT, ("spec", "template", "metadata", "labels"), ["a"], "template.metadata.labels: "),
    (DEPLOYMENT, ("spec", "template", "spec"), "x", "spec.template.spec: must be a mapping"),
    (DEPLOYMENT, CONTAINER[:-1], "x", "spec.template.spec.containers: must be a list, got 'x'"),
    (DEPLOYMENT, CONTAINER[:-1], [None], "spec.template.spec.containers[0]: must not be null"),
    (DEPLOYMENT, CONTAINER, "x", "spec.template.spec.containers[0]: must be a mapping, got 'x'"),
    (DEPLOYMENT, (*CONTAINER, "env"), "x", "containers[0].env: must be a list, got 'x'"),
    (DEPLOYMENT, (*CONTAINER, "env", 0), 1, "containers[0].env[0]: must be a mapping, got 1"),
    (DEPLOYMENT, (*CONTAINER, "env", 0, "valueFrom"), [], "env[0].valueFrom: must be a mapping"),
    (
        DEPLOYMENT,
        (*CONTAINER, "env", 0, "valueFrom", "configMapKeyRef", "name"),
        ["cfg"],
        "env[0].valueFrom.configMapKeyRef.name: must be a string, got ['cfg']",
    ),
    (DEPLOYMENT, (*CONTAINER, "envFrom"), {"a": 1}, "containers[0].envFrom: must be a list"),
    (DEPLOYMENT, (*CONTAINER, "envFrom", 0, "secretRef"), "s", "envFrom[0].secretRef: must be a"),
    (DEPLOYMENT, (*CONTAINER, "ports"), 8080, "containers[0].ports: must be a list, got 8080"),
    (DEPLOYMENT, (*CONTAINER, "ports", 0, "containerPort"), "x", "containerPort: must be a whole"),
    (DEPLOYMENT, ("spec", "template", "spec", "volumes"), "x", "spec.volumes: must be a list"),
    (DEPLOYMENT, ("spec", "template", "spec", "volumes", 0), "x", "volumes[0]: must be a mapping"),
    (
        DEPLOYMENT,
        ("spec", "template", "spec", "volumes", 0, "configMap"),
        "cfg",
        "spec.template.spec.volumes[0].configMap: must be a mapping, got 'cfg'",
    ),
    (
        DEPLOYMENT,
        ("spec", "template", "spec", "volumes", 0, "configMap", "optional"),
        "yes",
        "volumes[0].configMap.optional: must be true or false, got 'yes'",
    ),
    (HPA, ("spec", "minReplicas"), [1], "[HorizontalPodAutoscaler/app] spec.minReplicas: must be"),
    (HPA, ("spec", "maxReplicas"), "4", "spec.maxReplicas: must be a whole number, got '4'"),
    (HPA, ("spec", "scaleTargetRef"), "app", "spec.scaleTargetRef: must be a mapping, got 'app'"),
    (HPA, ("metadata", "name"), None, "[HorizontalPodAutoscaler/?] metadata.name: required"),
    (SERVICE, ("spec", "ports"), "80", "[Service/app-extra] spec.ports: must be a list, got '80'"),
    (SERVICE, ("spec", "ports", 0, "port"), "80", "spec.ports[0].port: must be a whole number"),
    (SERVICE, ("spec", "ports", 0, "targetPort"), [1], "targetPort: must be a whole number or a"),
    (
        SERVICE,
        ("spec", "selector"),
        ["app"],
        "[Service/app-extra] spec.selector: must be a mapping",
    ),
    (SERVICE, ("spec", "type"), 1, "[Service/app-extra] spec.type: must be a string, got 1"),
    (CONFIGMAP, ("data",), ["k"], "[ConfigMap/cfg] data: must be a mapping of strings to strings"),
    (CONFIGMAP, ("data", "k"), 1, "[ConfigMap/cfg] data.k: must be a string, got 1 (quote it)"),
    (SECRET, ("data", "k"), "not base64!", "[Secret/sec] data.k: must be base64-encoded text"),
    (SCALED_OBJECT, ("spec", "minReplicaCount"), "x", "[ScaledObject/other] spec.minReplicaCount"),
    (SCALED_OBJECT, ("spec", "triggers"), {"a": 1}, "[ScaledObject/other] spec.triggers: must be"),
    (SCALED_OBJECT, ("spec", "triggers", 0, "metadata", "value"), 80, "metadata.value: must be a"),
]


def _with(index: int, path: tuple[Any, ...], value: Any) -> list[dict[str, Any]]:
    docs = copy.deepcopy(BASE)
    node: Any = docs[index]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return docs


def _run(file: Path, docs: list[dict[str, Any]]) -> int:
    file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return main(
        ["simulate", "--canary", str(file), "--recording", str(HEALTHY), "--output", "json"]
    )


@pytest.mark.parametrize(
    ("index", "path", "value", "message"),
    MALFORMED,
    ids=[f"{BASE[c[0]]['kind']}.{'.'.join(map(str, c[1]))}={c[2]!r}" for c in MALFORMED],
)
def test_a_malformed_object_is_exit_2_naming_the_document_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: int,
    path: tuple[Any, ...],
    value: Any,
    message: str,
) -> None:
    file = tmp_path / "canary.yaml"
    code = _run(file, _with(index, path, value))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{file} [" in err
    assert message in err


def test_a_secret_value_is_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "canary.yaml"
    docs = _with(SECRET, ("data", "k"), "hunter2!")
    docs[SECRET]["data"]["n"] = 12345
    code = _run(file, docs)
    err = capsys.readouterr().err
    assert code == 2
    assert "[Secret/sec] data.k: must be base64-encoded text" in err
    assert "[Secret/sec] data.n: must be base64-encoded text" in err
    assert "hunter2" not in err and "12345" not in err


def test_every_fault_of_every_object_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = _with(DEPLOYMENT, ("spec", "replicas"), "x")
    docs[HPA]["spec"]["minReplicas"] = [1]
    docs[DEPLOYMENT]["metadata"]["labels"] = {1: "x"}
    file = tmp_path / "canary.yaml"
    code = _run(file, docs)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 3, err


@pytest.mark.parametrize(
    ("index", "path", "value"),
    [
        (DEPLOYMENT, ("spec", "replicas"), 3.0),  # a whole float is the whole number
        (HPA, ("spec", "minReplicas"), 2.0),
        (SERVICE, ("spec", "ports", 0, "targetPort"), 8080),
        (DEPLOYMENT, ("metadata", "labels", "empty"), ""),
        (SECRET, ("data", "k"), "dg==\n"),  # as a YAML block scalar leaves it
    ],
)
def test_well_typed_objects_still_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: int,
    path: tuple[Any, ...],
    value: Any,
) -> None:
    file = tmp_path / "canary.yaml"
    code = _run(file, _with(index, path, value))
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "path",
    [("spec", "replicas"), ("metadata", "labels"), ("spec", "template", "spec", "volumes")],
)
def test_null_is_an_absent_field_as_the_api_server_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: tuple[Any, ...]
) -> None:
    docs = copy.deepcopy(BASE)
    node: Any = docs[DEPLOYMENT]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = None
    file = tmp_path / "canary.yaml"
    code = _run(file, docs)
    err = capsys.readouterr().err
    assert code == 0, err


def test_the_simulate_function_checks_objects_too(tmp_path: Path) -> None:
    """sweep and report build their Manifests themselves: a fault is a SpecError there too."""
    file = tmp_path / "canary.yaml"
    file.write_text(yaml.safe_dump_all(_with(DEPLOYMENT, ("spec", "replicas"), "x")))
    manifests = load_manifests([file])
    with pytest.raises(SpecError, match=r"\[Deployment/app\] spec.replicas: must be a whole"):
        asyncio.run(simulate(manifests, manifests.canaries[0], load_recording(HEALTHY)))


@pytest.mark.parametrize(
    "manifest",
    sorted(EXAMPLES.rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_bundled_examples_have_no_object_problems(manifest: Path) -> None:
    assert object_problems(read_documents(manifest), manifest) == []


FUZZER_CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: app, namespace: test}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 5, maxWeight: 30, stepWeight: 15}
---
"""


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (  # the fuzzer's t1.yaml: it crashed in simulate's _seed
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: [app]\n",
            "[Deployment/?] metadata: must be a mapping, got ['app']",
        ),
        (  # t2.yaml: it crashed in traffic/_objects.py
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n"
            "  labels: {1: x, app: app}\nspec:\n  replicas: 1\n"
            "  selector: {matchLabels: {app: app}}\n  template:\n"
            "    metadata: {labels: {app: app}}\n"
            "    spec: {containers: [{name: app, image: app:1}]}\n",
            "[Deployment/app] metadata.labels: key 1 must be a string (quote it)",
        ),
    ],
    ids=["t1", "t2"],
)
def test_the_fuzzer_reproductions_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deployment: str, message: str
) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(FUZZER_CANARY + deployment)
    code = main(["simulate", "--canary", str(file), "--recording", str(HEALTHY)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{file} {message}" in err
