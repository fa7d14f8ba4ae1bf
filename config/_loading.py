"""YAML / dict -> typed manifests, with every problem reported at its field path.

``load_manifests`` reads (multi-document) YAML files; ``parse_canary`` and friends validate one
document. Schema errors from pydantic are rewritten into ``path: what is wrong, what is valid``;
then semantic rules Flagger enforces with its CRD ``oneOf`` (or at run time) are checked, plus the
deliberate changes of flagger-behaviour §12 (Q4, Q11, Q16).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from config._presets import PRESETS, apply_preset
from config._spec import (
    API_VERSION,
    AlertProvider,
    Canary,
    MetricTemplate,
    Strategy,
)
from config.errors import Problem, SpecError

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


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Read every YAML document of a file; errors name the file and line."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("", "file not found"), source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem("", f"cannot read file: {exc}"), source=source) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError(Problem(where, f"invalid YAML: {reason}"), source=source) from None
    problems: list[Problem] = []
    out: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict):
            out.append(doc)
        elif isinstance(doc, list):  # a `kind: List`-less list of objects
            out.extend(d for d in doc if isinstance(d, dict))
        else:
            problems.append(Problem(f"document {index + 1}", "expected a mapping (a manifest)"))
    if problems:
        raise SpecError(problems, source=source)
    return out


def load_manifests(paths: Iterable[str | Path], *, preset: str | None = None) -> Manifests:
    """Load and validate every manifest in the files; collect all problems before raising."""
    found = Manifests()
    problems: list[Problem] = []
    for path in paths:
        for index, doc in enumerate(read_documents(path)):
            where = _doc_label(path, index, doc)
            try:
                _add(found, doc, preset)
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
    return f"{path} [{kind}/{name}]"


def _add(found: Manifests, doc: dict[str, Any], preset: str | None) -> None:
    kind = doc.get("kind")
    api = str(doc.get("apiVersion", ""))
    if kind in FLAGGER_KINDS or api.startswith("flagger.app/"):
        if api != API_VERSION:
            raise SpecError(
                Problem("apiVersion", f"must be {API_VERSION}, got {api or 'nothing'!r}")
            )
        if kind == "Canary":
            found.canaries.append(parse_canary(doc, preset=preset))
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


def parse_canary(body: dict[str, Any], *, preset: str | None = None) -> Canary:
    """Validate a Canary document (after merging a named preset); raise SpecError listing faults."""
    if preset is not None:
        if preset not in PRESETS:
            raise SpecError(
                Problem(
                    "--preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
                )
            )
        body = apply_preset(body, PRESETS[preset])
    canary = _validate(Canary, body)
    problems = list(_semantic_problems(canary))
    if problems:
        raise SpecError(problems)
    return canary


def parse_metric_template(body: dict[str, Any]) -> MetricTemplate:
    return _validate(MetricTemplate, body)


def parse_alert_provider(body: dict[str, Any]) -> AlertProvider:
    return _validate(AlertProvider, body)


def _validate(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SpecError(_translate(model, exc)) from None


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
        return f"must be one of {ctx.get('expected', '?')}, got {given!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number, got {given!r}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number, got {given!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, got {given!r}"
    if kind in ("string_type",):
        return f"must be a string, got {given!r}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {given!r}"
    if kind in ("list_type",):
        return f"must be a list, got {given!r}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}, got {given!r}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}, got {given!r}"
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


def _semantic_problems(canary: Canary) -> Iterable[Problem]:
    """Rules beyond the field schema: Flagger's CRD oneOf and our §12 decisions."""
    spec = canary.spec
    a_key = "spec.analysis" if spec.analysis is not None else "spec.canaryAnalysis"
    analysis = spec.effective_analysis
    chosen = [
        name
        for name, value in (
            ("iterations", analysis.iterations),
            ("stepWeight", analysis.step_weight),
            ("stepWeights", analysis.step_weights),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        got = " and ".join(chosen) if chosen else "none"
        yield Problem(
            a_key,
            "set exactly one of iterations (blue/green, A/B), stepWeight or stepWeights; "
            f"got {got}",
        )
    if spec.service is None:
        yield Problem(
            "spec.service", "required: the service port the canary serves on (spec.service.port)"
        )
    if spec.target_ref.kind != "Deployment":
        yield Problem(
            "spec.targetRef.kind",
            f"{spec.target_ref.kind} targets are not supported by canary-engine yet; "
            "only Deployment targets can be analysed",
        )
    provider = spec.provider
    if provider == "kubernetes" and analysis.match:
        yield Problem(
            f"{a_key}.match",
            "A/B testing needs a mesh or ingress router; the kubernetes provider cannot route "
            "by header or cookie. Remove match, or use istio, nginx or gatewayapi",
        )
    if analysis.match and not analysis.effective_iterations:
        yield Problem(f"{a_key}.iterations", "A/B testing (match) needs iterations > 0")
    if provider == "nginx" and spec.ingress_ref is None:
        yield Problem("spec.ingressRef", "required when provider is nginx")
    if (
        provider is not None
        and provider.startswith("gatewayapi")
        and not (spec.service and spec.service.gateway_refs)
    ):
        yield Problem(
            "spec.service.gatewayRefs",
            "GatewayRefs must be specified when using Gateway API as a provider",
        )
    sa = analysis.session_affinity
    if sa is not None and sa.primary_cookie_name and sa.primary_cookie_name == sa.cookie_name:
        yield Problem(f"{a_key}.sessionAffinity.primaryCookieName", "must differ from cookieName")
    for i, metric in enumerate(analysis.metrics):
        where = f"{a_key}.metrics[{i}]"
        if (
            metric.name == "request-duration"
            and metric.threshold_range is None
            and metric.threshold is None
            and metric.judge is None
        ):
            yield Problem(
                where,
                "request-duration needs thresholdRange.max (milliseconds) or threshold; "
                "without either every non-zero latency would fail",
            )
        if not metric.is_builtin and metric.template_ref is None and not metric.query:
            yield Problem(
                where,
                f"metric {metric.name!r} is not builtin (request-success-rate, request-duration) "
                "and has neither templateRef nor query",
            )
    if analysis.strategy is not Strategy.CANARY and analysis.step_weight_promotion:
        yield Problem(
            f"{a_key}.stepWeightPromotion",
            "only applies to the canary strategy (stepWeight / stepWeights)",
        )
