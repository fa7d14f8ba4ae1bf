"""The types of the Kubernetes objects ``simulate`` seeds, checked as the API server would.

A Canary file may carry the target Deployment (or DaemonSet), its HPA or KEDA ScaledObject,
Services, ConfigMaps and Secrets, and the routers' objects. A cluster's API server refuses one
whose fields have the wrong type (``replicas: x``, ``labels: {1: x}``, ``containers: "x"``)
before any controller sees it; ``simulate`` seeds them straight into its in-memory cluster, so
it checks them here, and reports each fault as the Flagger objects' are:
``FILE [Deployment/app] spec.template.spec.containers[0].env: must be a list, got 'x'``.

Only what canary-engine reads is checked (``traffic``: the workloads, the Service, config
tracking, the autoscalers, the simulated controllers), and only its type: a table of shapes,
no model per kind. ``null`` stands for an absent field, as the API server reads it (``seeded``
drops them); a list item may not be null. Every seeded kind has its ``metadata`` checked.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeAlias

from config import Problem
from config.errors import short
from traffic import kind_of

#: A field's type: a leaf name (``_LEAVES``), a mapping of field names to their shapes, or a
#: one-item list: a list whose every item has that shape.
Shape: TypeAlias = "str | dict[str, Shape] | list[Shape]"

STRING, INT32, INT64, BOOL, COUNT = "string", "int32", "int64", "bool", "count"
INT_OR_STRING, STRING_MAP, BASE64_MAP = "int-or-string", "string-map", "base64-map"

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

_LABEL_SELECTOR: Final[Shape] = {
    "matchLabels": STRING_MAP,
    "matchExpressions": [{"key": STRING, "operator": STRING, "values": [STRING]}],
}
_CONFIG_REF: Final[Shape] = {"name": STRING, "optional": BOOL}
_KEY_REF: Final[Shape] = {"name": STRING, "key": STRING, "optional": BOOL}
_CONTAINER: Final[Shape] = {
    "name": STRING,
    "ports": [{"name": STRING, "containerPort": INT32, "protocol": STRING}],
    "env": [
        {
            "name": STRING,
            "value": STRING,
            "valueFrom": {"configMapKeyRef": _KEY_REF, "secretKeyRef": _KEY_REF},
        }
    ],
    "envFrom": [{"configMapRef": _CONFIG_REF, "secretRef": _CONFIG_REF}],
}
_POD_SPEC: Final[Shape] = {
    "containers": [_CONTAINER],
    "initContainers": [_CONTAINER],
    "volumes": [
        {
            "name": STRING,
            "configMap": _CONFIG_REF,
            "secret": {"secretName": STRING, "optional": BOOL},
            "projected": {"sources": [{"configMap": _CONFIG_REF, "secret": _CONFIG_REF}]},
        }
    ],
    "nodeSelector": STRING_MAP,
    "topologySpreadConstraints": [{"labelSelector": _LABEL_SELECTOR}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"podAffinityTerm": {"labelSelector": _LABEL_SELECTOR}}
            ],
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": _LABEL_SELECTOR}],
        }
    },
}
_TEMPLATE: Final[Shape] = {
    "metadata": {"labels": STRING_MAP, "annotations": STRING_MAP},
    "spec": _POD_SPEC,
}
_CONDITIONS: Final[Shape] = [
    {
        "type": STRING,
        "status": STRING,
        "reason": STRING,
        "message": STRING,
        "lastUpdateTime": STRING,
        "lastTransitionTime": STRING,
    }
]
_METADATA: Final[Shape] = {
    "name": STRING,
    "generateName": STRING,
    "namespace": STRING,
    "labels": STRING_MAP,
    "annotations": STRING_MAP,
    "generation": INT64,
    "finalizers": [STRING],
    "ownerReferences": [{"kind": STRING, "name": STRING, "uid": STRING, "controller": BOOL}],
}
_SCALE_TARGET: Final[dict[str, Shape]] = {"apiVersion": STRING, "kind": STRING, "name": STRING}

#: What is read of each kind beyond its metadata, by (API group, kind).
SHAPES: Final[dict[tuple[str, str], Shape]] = {
    ("apps", "Deployment"): {
        "spec": {"replicas": COUNT, "selector": _LABEL_SELECTOR, "template": _TEMPLATE},
        "status": {
            "observedGeneration": INT64,
            "replicas": INT32,
            "updatedReplicas": INT32,
            "readyReplicas": INT32,
            "availableReplicas": INT32,
            "conditions": _CONDITIONS,
        },
    },
    ("apps", "DaemonSet"): {
        "spec": {"selector": _LABEL_SELECTOR, "template": _TEMPLATE},
        "status": {
            "observedGeneration": INT64,
            "desiredNumberScheduled": INT32,
            "updatedNumberScheduled": INT32,
            "numberAvailable": INT32,
        },
    },
    ("autoscaling", "HorizontalPodAutoscaler"): {
        "spec": {"scaleTargetRef": _SCALE_TARGET, "minReplicas": COUNT, "maxReplicas": COUNT},
    },
    ("keda.sh", "ScaledObject"): {
        "spec": {
            "scaleTargetRef": {**_SCALE_TARGET, "envSourceContainerName": STRING},
            "minReplicaCount": COUNT,
            "maxReplicaCount": COUNT,
            "idleReplicaCount": COUNT,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": STRING}},
            "triggers": [{"name": STRING, "type": STRING, "metadata": STRING_MAP}],
        },
    },
    ("", "Service"): {
        "spec": {
            "type": STRING,
            "selector": STRING_MAP,
            "ports": [
                {
                    "name": STRING,
                    "protocol": STRING,
                    "appProtocol": STRING,
                    "port": INT32,
                    "targetPort": INT_OR_STRING,
                    "nodePort": INT32,
                }
            ],
        },
    },
    ("serving.knative.dev", "Service"): {
        "spec": {"template": _TEMPLATE},
        "status": {"latestCreatedRevisionName": STRING},
    },
    ("serving.knative.dev", "Revision"): {"status": {"conditions": _CONDITIONS}},
    ("", "ConfigMap"): {"data": STRING_MAP, "binaryData": BASE64_MAP},
    ("", "Secret"): {"type": STRING, "data": BASE64_MAP},
}


def object_problems(
    objects: Iterable[Mapping[str, Any]], source: str | Path | None = None
) -> list[Problem]:
    """Every type fault in the objects ``simulate`` seeds (kinds ``traffic`` knows; others are
    not seeded and not checked), each at ``FILE [Kind/name] field.path`` (without ``FILE`` when
    ``source`` is None)."""
    problems: list[Problem] = []
    for body in objects:
        try:
            kind = kind_of(body)
        except KeyError:
            continue
        found: list[Problem] = []
        meta = body.get("metadata")
        _check(meta, _METADATA, "metadata", found)
        if not isinstance(meta, Mapping) or not (meta.get("name") or meta.get("generateName")):
            if not found:
                found.append(Problem("metadata.name", "required field is missing"))
        shape = SHAPES.get((kind.group, kind.kind))
        if isinstance(shape, dict):
            for key, sub in shape.items():
                _check(body.get(key), sub, key, found)
        where = f"[{kind.kind}/{_name(meta)}]"
        if source is not None:
            where = f"{source} {where}"
        problems.extend(Problem(f"{where} {p.path}", p.message) for p in found)
    return problems


def seeded(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the object as the API server stores it: fields set to ``null`` are absent."""
    return _drop_nulls(copy.deepcopy(dict(body)))  # type: ignore[no-any-return]


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _name(meta: Any) -> str:
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else "?"


def _check(value: Any, shape: Shape, path: str, out: list[Problem]) -> None:
    if value is None:
        return  # absent: nothing canary-engine reads is required beyond the name
    if isinstance(shape, dict):
        if not isinstance(value, Mapping):
            out.append(Problem(path, f"must be a mapping, got {short(value)}"))
            return
        for key, sub in shape.items():
            _check(value.get(key), sub, f"{path}.{key}", out)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            out.append(Problem(path, f"must be a list, got {short(value)}"))
            return
        for i, item in enumerate(value):
            if item is None:
                out.append(Problem(f"{path}[{i}]", "must not be null"))
            else:
                _check(item, shape[0], f"{path}[{i}]", out)
    elif shape in (STRING_MAP, BASE64_MAP):
        _check_map(value, path, out, base64_values=shape == BASE64_MAP)
    else:
        message = _LEAVES[shape](value)
        if message is not None:
            out.append(Problem(path, message))


def _check_map(value: Any, path: str, out: list[Problem], *, base64_values: bool) -> None:
    """A map of strings to strings (labels, annotations, a selector, a ConfigMap's data), or
    of base64 text (``[]byte`` values: a Secret's data, a ConfigMap's binaryData)."""
    if not isinstance(value, Mapping):
        out.append(Problem(path, f"must be a mapping of strings to strings, got {short(value)}"))
        return
    for key, item in value.items():
        if not isinstance(key, str):
            out.append(Problem(path, f"key {short(key)} must be a string (quote it)"))
            continue
        if item is None:
            continue
        if base64_values:  # a Secret's: the value is not shown
            fault = None if _is_base64(item) else "must be base64-encoded text"
        else:
            fault = _string(item)
        if fault is not None:
            out.append(Problem(f"{path}.{key}", fault))


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    hint = " (quote it)" if isinstance(value, int | float) else ""
    return f"must be a string, got {short(value)}{hint}"


def _whole(value: Any, bounds: tuple[int, int]) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is 3, as for the Flagger objects
    if isinstance(value, bool) or not isinstance(value, int):
        quoted = isinstance(value, str) and value.strip().lstrip("+-").isdigit()
        hint = " (a quoted string; write it without quotes)" if quoted else ""
        return f"must be a whole number, got {short(value)}{hint}"
    low, high = bounds
    if value < low:
        return f"must be >= {low}, got {value}"
    if value > high:
        return f"must be <= {high}, got {short(value)}"
    return None


def _bool(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    quoted = isinstance(value, str) and value.lower() in ("true", "false")
    hint = " (a quoted string; write it without quotes)" if quoted else ""
    return f"must be true or false, got {short(value)}{hint}"


def _int_or_string(value: Any) -> str | None:
    if isinstance(value, str) or _whole(value, _INT32) is None:
        return None
    return f"must be a whole number or a string, got {short(value)}"


def _is_base64(text: Any) -> bool:
    """As Go decodes a ``[]byte`` field: standard alphabet, padded; line breaks are skipped."""
    if not isinstance(text, str):
        return False
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_LEAVES: Final = {
    STRING: _string,
    INT32: lambda v: _whole(v, _INT32),
    INT64: lambda v: _whole(v, _INT64),
    COUNT: lambda v: _whole(v, (0, _INT32[1])),
    BOOL: _bool,
    INT_OR_STRING: _int_or_string,
}
