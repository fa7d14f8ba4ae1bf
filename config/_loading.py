"""YAML / dict -> typed manifests, with every problem reported at its field path.

``load_manifests`` reads (multi-document) YAML files (``config._yaml``); ``parse_canary`` and
friends validate one document. Schema errors from pydantic are rewritten into ``path: what is
wrong, what is valid``; then a Canary's rules beyond the schema are checked (``config._rules``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from config._presets import PRESETS, apply_preset
from config._rules import canary_problems
from config._spec import (
    API_VERSION,
    AlertProvider,
    Canary,
    MetricTemplate,
)
from config._yaml import read_documents
from config.errors import Problem, SpecError, short

FLAGGER_KINDS = ("Canary", "MetricTemplate", "AlertProvider")

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class Manifests:
    """Everything read from a set of files: Flagger objects by kind, plus any other objects."""

    canaries: list[Canary] = field(default_factory=list)
    templates: list[MetricTemplate] = field(default_factory=list)
    alert_providers: list[AlertProvider] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)

    def template(self, name: str, namespace: str) -> MetricTemplate | None:
        for t in self.templates:
            if t.metadata.name == name and t.metadata.namespace == namespace:
                return t
        return None


def load_manifests(
    paths: Iterable[str | Path], *, preset: str | None = None, default_provider: str | None = None
) -> Manifests:
    """Load and validate every manifest in the files; collect all problems before raising
    (``default_provider``: as for ``parse_canary``)."""
    found = Manifests()
    problems: list[Problem] = []
    for path in paths:
        for index, doc in enumerate(read_documents(path)):
            where = _doc_label(path, index, doc)
            try:
                _add(found, doc, preset, default_provider)
            except SpecError as exc:
                problems.extend(
                    Problem(f"{where} {p.path}".rstrip(), p.message) for p in exc.problems
                )
    if problems:
        raise SpecError(problems)
    return found


def _doc_label(path: str | Path, index: int, doc: dict[str, Any]) -> str:
    kind = doc.get("kind", "?")
    name = (
        (doc.get("metadata") or {}).get("name", "?")
        if isinstance(doc.get("metadata"), dict)
        else "?"
    )
    # the label starts every problem of the document: a kind or name that is no short string
    # (a list, 100,000 characters) is quoted short, as the problem itself quotes it
    return f"{path} [{_label_part(kind)}/{_label_part(name)}]"


def _label_part(value: Any) -> str:
    return value if isinstance(value, str) and len(value) <= _LABEL_PART else short(value, 40)


_LABEL_PART = 63


def _add(
    found: Manifests, doc: dict[str, Any], preset: str | None, default_provider: str | None
) -> None:
    kind = doc.get("kind")
    api = doc.get("apiVersion")
    if kind in FLAGGER_KINDS or (isinstance(api, str) and api.startswith("flagger.app/")):
        if api != API_VERSION:
            # quoted as written: a list as a list (not the text "['flagger.app/v1beta1']"),
            # null or "" as nothing, a long string cut short
            got = short(api) if api not in (None, "") else "nothing"
            raise SpecError(Problem("apiVersion", f"must be {API_VERSION}, got {got}"))
        if kind == "Canary":
            found.canaries.append(
                parse_canary(doc, preset=preset, default_provider=default_provider)
            )
        elif kind == "MetricTemplate":
            found.templates.append(parse_metric_template(doc))
        elif kind == "AlertProvider":
            found.alert_providers.append(parse_alert_provider(doc))
        else:
            raise SpecError(
                Problem("kind", f"must be one of {', '.join(FLAGGER_KINDS)}, got {kind!r}")
            )
    else:
        found.objects.append(doc)


def parse_canary(
    body: Mapping[str, Any], *, preset: str | None = None, default_provider: str | None = None
) -> Canary:
    """Validate a Canary document (after merging a named preset); raise SpecError listing faults.

    ``default_provider``: the provider routing a Canary without ``spec.provider`` (the
    controller's ``--mesh-provider``), when the caller knows it; rules that depend on the router
    are then checked against it too (``validate`` does not know it and leaves them out)."""
    if preset is not None:
        if preset not in PRESETS:
            raise SpecError(
                Problem(
                    "--preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
                )
            )
        body = apply_preset(body, PRESETS[preset])
    canary = _validate(Canary, body)
    problems = list(canary_problems(canary, default_provider))
    if problems:
        raise SpecError(problems)
    return canary


def parse_metric_template(body: Mapping[str, Any]) -> MetricTemplate:
    return _validate(MetricTemplate, body)


def parse_alert_provider(body: Mapping[str, Any]) -> AlertProvider:
    return _validate(AlertProvider, body)


def _validate(model: type[M], body: Mapping[str, Any]) -> M:
    try:
        # only the spec holds typed numbers (the status is kept as given, and is the bulk of a
        # live Canary: walking it on every tick's parse would cost more than the rest)
        spec = body.get("spec")
        typed = body if spec is None else {**body, "spec": _as_stored(spec)}
        return model.model_validate(typed)
    except ValidationError as exc:
        raise SpecError(_translate(model, exc)) from None


def _as_stored(value: Any) -> Any:
    """A spec as the API server stores it, so that a manifest file reads as the same object from
    the cluster: ``30.0`` as ``30`` (it takes a whole float for an integer field and hands back
    ``30``; a float field takes the int unchanged), and a field set to ``null`` left out (it
    prunes nulls from a CRD object's fields, none of Flagger's being nullable: a Helm chart that
    renders ``webhooks:`` with nothing under it applies as a Canary without webhooks). A null
    item of a list is kept, and refused by the schema."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_as_stored(v) for v in value]
    return value


def _translate(model: type[BaseModel], exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        # pydantic reports one error per union arm ("int" / "str"); the path ends with the arm name
        if loc and loc[-1] in ("int", "str", "float", "bool") and len(loc) > 1:
            loc = loc[:-1]
        path = _format_loc(loc)
        message = _message(model, err, loc)
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append(Problem(path, message))
    return problems


def _format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-after", "function-before", "function-wrap")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(model: type[BaseModel], err: Any, loc: Sequence[Any]) -> str:
    kind = err.get("type", "")
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        valid = _field_names_at(model, loc[:-1])
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(valid)}"
        return f"unknown field; {hint}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}, got {short(given)}"
    # The models are strict, as the API server is against the CRD: a quoted number or boolean
    # is refused with the fix (lax parsing read `skipAnalysis: "yes"` as true).
    quoted = " (a quoted string; write it without quotes)"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        hint = quoted if isinstance(given, str) and _is_number(given) else ""
        return f"must be a whole number, got {short(given)}{hint}"
    if kind in ("float_parsing", "float_type"):
        hint = quoted if isinstance(given, str) and _is_number(given) else ""
        return f"must be a number, got {short(given)}{hint}"
    if kind in ("bool_parsing", "bool_type"):
        hint = quoted if isinstance(given, str) and given.lower() in ("true", "false") else ""
        return f"must be true or false, got {short(given)}{hint}"
    if kind in ("string_type",):
        hint = " (quote it)" if isinstance(given, int | float | bool) else ""
        return f"must be a string, got {short(given)}{hint}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {short(given)}"
    if kind in ("list_type",):
        return f"must be a list, got {short(given)}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}, got {short(given)}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}, got {short(given)}"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}, got {short(given)}"
    if kind == "less_than":
        return f"must be < {ctx.get('lt')}, got {short(given)}"
    if kind == "finite_number":
        return f"must be a finite number, got {short(given)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def _field_names_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The camelCase field names accepted at a location, for "did you mean" hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        nxt = None
        for name, info in fields.items():
            if part in (name, info.alias):
                nxt = _model_of(info.annotation)
                break
        if nxt is None:
            return []
        current = nxt
    fields = getattr(current, "model_fields", {})
    return [info.alias or name for name, info in fields.items()]


def _model_of(annotation: Any) -> Any:
    """Find a BaseModel class inside an annotation such as ``list[Metric] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_number(text: str) -> bool:
    """A quoted decimal number (`"9898"`, `"0.5"`), which unquoted would have been one."""
    return _DECIMAL.fullmatch(text.strip()) is not None


_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
