"""What a real API server does with a custom resource against its CRD's ``openAPIV3Schema``:
prune the fields the schema does not name, then validate what is left.

The test API server (``tests/kubeapi.py``) applies it to every ``flagger.app`` write, so a status
field the controller writes but ``config/deploy/crd`` does not declare disappears in the tests as
it would on a cluster (where nothing reports it: kubernetes-asyncio ignores the server's
``Warning`` header), and a value of the wrong type is refused with 422 as the API server refuses
it. Without this, the fake stored anything and a missing schema entry was found only on a real
cluster, after a restart had lost the state the field held.

Pruning follows the structural-schema rules: an object drops keys its ``properties`` do not name
unless it sets ``x-kubernetes-preserve-unknown-fields``; ``additionalProperties`` and ``items``
schemas apply to every value; ``metadata`` at the root is the server's ObjectMeta, not pruned
here. Test-only module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "config" / "deploy" / "crd"

Schema = dict[str, Any]
GROUP = "flagger.app"


@cache
def _crds_by_plural() -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        (version,) = doc["spec"]["versions"]
        out[doc["spec"]["names"]["plural"]] = version["schema"]["openAPIV3Schema"]
    return out


def schema_for(group: str, plural: str) -> Schema | None:
    """The ``openAPIV3Schema`` of a flagger.app resource, or None for any other resource."""
    return _crds_by_plural().get(plural) if group == GROUP else None


#: ObjectMeta's fields: the API server decodes metadata into a typed struct, so any other key is
#: dropped (a CRD cannot describe metadata beyond name and generateName).
OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def prune_object(schema: Schema, body: dict[str, Any], parts: tuple[str, ...]) -> Iterator[str]:
    """Prune a whole written object: its unknown top-level fields, its metadata to ObjectMeta's
    fields, and the ``parts`` (``spec``, ``status``) the write may change against the schema."""
    properties = schema.get("properties", {})
    for key in list(body):
        if key not in properties and key not in ("apiVersion", "kind", "metadata"):
            del body[key]
            yield key
    meta = body.get("metadata")
    if isinstance(meta, dict):
        for key in list(meta):
            if key not in OBJECT_META:
                del meta[key]
                yield f"metadata.{key}"
    for part in parts:
        if part in body and part in properties:
            yield from prune(properties[part], body[part], part)


def prune(schema: Schema, value: Any, path: str = "") -> Iterator[str]:
    """Remove, in place, the fields of ``value`` that ``schema`` does not name; yield their
    dotted paths (the API server's ``unknown field "status.foo"`` warnings)."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        for key in list(value):
            where = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                yield from prune(properties[key], value[key], where)
            elif isinstance(extra, dict):
                yield from prune(extra, value[key], where)
            elif not (keep_unknown or extra is True or (path == "" and key == "metadata")):
                del value[key]
                yield where
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from prune(schema["items"], item, f"{path}[{i}]")


def _to_json_schema(node: Schema) -> Schema:
    """An ``openAPIV3Schema`` node as JSON Schema (the API server's type, enum, bound, pattern
    and format checks; ``x-kubernetes-int-or-string`` as integer or string)."""
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("description", "default"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


#: RFC 3339, as the API server's ``date-time`` format reads it (its strfmt).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _formats() -> Any:
    """The formats the CRDs use, checked as the API server checks them (jsonschema's own
    date-time check needs an optional package)."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def date_time(value: object) -> bool:
        return not isinstance(value, str) or _DATE_TIME.fullmatch(value) is not None

    @checker.checks("int32")
    def int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    return checker


@cache
def _validator(plural: str) -> Any:
    import jsonschema

    schema = _to_json_schema(_crds_by_plural()[plural])
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema, format_checker=_formats())


def invalid_fields(plural: str, document: Any, parts: tuple[str, ...]) -> list[str]:
    """``path: message`` for each value of ``document`` under ``parts`` (``spec``, ``status``)
    that the CRD refuses; the rest of the object is not this write's (the server validates what
    the write changes; a test may seed an object the CRD would not accept)."""
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in _validator(plural).iter_errors(document)
        if error.absolute_path and error.absolute_path[0] in parts
    ]
