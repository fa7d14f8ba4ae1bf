"""YAML / dict -> typed manifests, with every problem reported at its field path.

``load_manifests`` reads (multi-document) YAML files; ``parse_canary`` and friends validate one
document. Schema errors from pydantic are rewritten into ``path: what is wrong, what is valid``;
then semantic rules Flagger enforces with its CRD ``oneOf`` (or at run time) are checked, plus the
deliberate changes of flagger-behaviour §12 (Q4, Q11, Q16).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from config._presets import PRESETS, apply_preset
from config._routers import RouterRules, router_rules, routers_that
from config._spec import (
    API_VERSION,
    AlertProvider,
    Canary,
    MetricTemplate,
)
from config._support import is_knative, not_built_problems
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
    """Read every YAML document of a file; errors name the file and line.

    Beyond plain YAML (README "Input bounds"): a key given twice in one mapping is an error naming
    both lines; nesting deeper than ``MAX_YAML_DEPTH`` levels, aliases that expand a document by
    more than ``MAX_ALIAS_NODES`` nodes, and recursive aliases are refused; integers must fit in
    64 bits; timestamps stay strings, as in Kubernetes.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("", "file not found"), source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem("", f"cannot read file: {exc}"), source=source) from None
    docs: list[Any] = []
    try:
        loader = _ManifestLoader(text)  # checks every character: may raise already
        try:
            while loader.check_data():  # type: ignore[no-untyped-call]
                doc = loader.get_data()
                if doc is not None:
                    docs.append(doc)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(exc, text), source=source) from None
    if loader.duplicates:
        raise SpecError(
            [
                Problem(
                    f"{source}:{again.line + 1}",
                    f"duplicate key {_short(key)} (first at {source}:{first.line + 1}); YAML keeps "
                    "only the last one and silently drops the first: remove or merge one",
                )
                for key, first, again in loader.duplicates
            ]
        )
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


# ---------------------------------------------------------------------------------------------
# The YAML loader: SafeLoader plus the bounds a manifest must keep
# ---------------------------------------------------------------------------------------------

#: Deepest nesting of collections a manifest may have (a Canary needs about 8, a Deployment 15).
MAX_YAML_DEPTH = 100
#: Nodes a document's aliases (``*name``) may add when expanded; beyond it the document is refused
#: ("billion laughs": a few hundred bytes of nested aliases expand to billions of nodes).
MAX_ALIAS_NODES = 100_000
#: Integers in a manifest must fit in 64 bits, like every integer Kubernetes stores.
_INT_LIMIT = 2**63
_INT_TEXT_LIMIT = 100  # characters; longer integer literals are out of range whatever they say


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a manifest may not contain (a bound of README "Input bounds")."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=message, problem_mark=mark)


class _ManifestLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, runaway nesting and alias bombs.

    Composition (nodes, before Python objects exist) tracks each node's size and depth as if its
    aliases were expanded, so a bomb is refused before anything expands it; construction turns
    every value a manifest could not hold (an invalid date, a huge integer) into a marked error.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, yaml.Mark, yaml.Mark]] = []
        self._depth = 0
        self._distinct = 0  # nodes composed in this document (aliases not counted)
        self._expanded: dict[yaml.Node, tuple[int, int]] = {}  # node -> (size, depth) expanded
        self._checked: set[yaml.Node] = set()

    # -- composition ---------------------------------------------------------------------------

    def compose_document(self) -> yaml.Node | None:
        self._distinct = 0
        self._expanded = {}
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            node: yaml.Node | None = super().compose_node(parent, index)
            if node is not None and node not in self._expanded:
                raise _Refused(
                    f"alias *{event.anchor} refers to a collection that contains it; a manifest "
                    "cannot be recursive",
                    event.start_mark,
                )
            return node
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(
                f"nested more than {MAX_YAML_DEPTH} levels deep; a manifest needs far fewer",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        self._distinct += 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            self._expanded[node] = (1, 1)
            return
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = self._expanded[child]
            size += child_size
            depth = max(depth, child_depth + 1)
        if depth > MAX_YAML_DEPTH:
            raise _Refused(
                f"nested more than {MAX_YAML_DEPTH} levels deep once its aliases are expanded",
                node.start_mark,
            )
        if size - self._distinct > MAX_ALIAS_NODES:
            raise _Refused(
                f"aliases (*name) here expand to more than {MAX_ALIAS_NODES:,} extra nodes "
                "(an alias bomb); write the repeated parts out",
                node.start_mark,
            )
        self._expanded[node] = (size, depth)

    # -- construction --------------------------------------------------------------------------

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ArithmeticError, LookupError, ValueError, TypeError, AttributeError) as exc:
            # e.g. `!!bool maybe`, `!!float x`: a tagged scalar its constructor cannot read
            tag = str(node.tag).removeprefix("tag:yaml.org,2002:")
            raise _Refused(
                f"cannot read {_short(node.value)} as !!{tag} ({type(exc).__name__}: {exc})",
                node.start_mark,
            ) from None

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Every mapping passes here once before merge keys (<<) rewrite it: the place to find a
        # key written twice. Keys merged in by << may be overridden; those are not duplicates.
        if node not in self._checked:
            self._checked.add(node)
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: construct_mapping reports it
                if first is not key_node.start_mark:
                    self.duplicates.append((key, first, key_node.start_mark))
        super().flatten_mapping(node)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(node.value)
    if len(text) <= _INT_TEXT_LIMIT:
        value = loader.construct_yaml_int(node)
        if -_INT_LIMIT <= value < _INT_LIMIT:
            return value
    shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
    raise _Refused(
        f"integer {shown} is out of range: integers in a manifest must fit in 64 bits",
        node.start_mark,
    )


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    # Kubernetes reads an unquoted date as a string (sigs.k8s.io/yaml); so do we, which also
    # keeps an impossible date such as 2001-02-30 from failing inside the YAML library.
    return str(loader.construct_scalar(node))


_ManifestLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ManifestLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
# Kubernetes' YAML (go-yaml) reads `1e3` and `5E-2` as numbers; PyYAML's YAML 1.1 rules want a dot
# in the mantissa and leave them strings, which the strict models would then refuse although
# `kubectl apply` accepts them. Resolve them as floats, as the API server does.
_ManifestLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(0, exc.position)) + 1
        return Problem(
            f"line {line}",
            f"invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})",
        )
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    reason = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, _Refused):
        return Problem(where, f"refused: {reason}")
    return Problem(where, f"invalid YAML: {reason}")


def _is_number(text: str) -> bool:
    """A quoted decimal number (`"9898"`, `"0.5"`), which unquoted would have been one."""
    return _DECIMAL.fullmatch(text.strip()) is not None


_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut short so a message never quotes a whole hostile document."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer too long to print, a runaway structure
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    return f"{path} [{kind}/{name}]"


def _add(
    found: Manifests, doc: dict[str, Any], preset: str | None, default_provider: str | None
) -> None:
    kind = doc.get("kind")
    api = str(doc.get("apiVersion", ""))
    if kind in FLAGGER_KINDS or api.startswith("flagger.app/"):
        if api != API_VERSION:
            raise SpecError(
                Problem("apiVersion", f"must be {API_VERSION}, got {api or 'nothing'!r}")
            )
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
    body: dict[str, Any], *, preset: str | None = None, default_provider: str | None = None
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
    problems = list(_semantic_problems(canary, default_provider))
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
        return f"must be one of {ctx.get('expected', '?')}, got {_short(given)}"
    # The models are strict, as the API server is against the CRD: a quoted number or boolean
    # is refused with the fix (lax parsing read `skipAnalysis: "yes"` as true).
    quoted = " (a quoted string; write it without quotes)"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        hint = quoted if isinstance(given, str) and _is_number(given) else ""
        return f"must be a whole number, got {_short(given)}{hint}"
    if kind in ("float_parsing", "float_type"):
        hint = quoted if isinstance(given, str) and _is_number(given) else ""
        return f"must be a number, got {_short(given)}{hint}"
    if kind in ("bool_parsing", "bool_type"):
        hint = quoted if isinstance(given, str) and given.lower() in ("true", "false") else ""
        return f"must be true or false, got {_short(given)}{hint}"
    if kind in ("string_type",):
        hint = " (quote it)" if isinstance(given, int | float | bool) else ""
        return f"must be a string, got {_short(given)}{hint}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {_short(given)}"
    if kind in ("list_type",):
        return f"must be a list, got {_short(given)}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}, got {_short(given)}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}, got {_short(given)}"
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


def _weighted_match_problems(
    canary: Canary, rules: RouterRules | None, a_key: str
) -> Iterable[Problem]:
    """``analysis.match`` with ``stepWeight``/``stepWeights``: Flagger's canary strategy, where
    the routers declaring ``weighted_match`` step the weights on the matching requests only (the
    rest stays on the primary; Gloo's RouteTable routes only the matching ones, as in A/B
    testing). Refused where that cannot happen, and with what would silently not work beside
    it."""
    analysis = canary.spec.effective_analysis
    can = ", ".join(routers_that(lambda c: c.weighted_match))
    if rules is None:
        pass  # no provider written nor known here (validate): the controller checks its default
    elif not rules.capabilities.ab_testing:
        yield Problem(
            f"{a_key}.match",
            f"the {rules.label} router cannot route by header or cookie, so it cannot split only "
            "the matching requests by weight (Flagger ignores match there). Remove match to step "
            f"all traffic, or use one of {can}",
        )
    elif not rules.capabilities.weighted_match:
        yield Problem(
            f"{a_key}.match",
            f"the {rules.label} router sends the matching requests to the canary all or "
            "nothing, so stepWeight/stepWeights cannot split them (Flagger ignores the weights: "
            "every matching request goes to the canary at the first step, and the canary is "
            "promoted after the next analysis). Set iterations for A/B testing, remove match to "
            f"step all traffic by weight, or use one of {can}",
        )
    if analysis.mirror:
        yield Problem(
            f"{a_key}.mirror",
            "cannot be combined with match and stepWeight/stepWeights: the routes that split "
            "the matching requests carry no mirror, so the analysis would never leave weight 0 "
            "(Flagger stays there). Remove mirror, or match",
        )
    if analysis.session_affinity is not None and (
        rules is None or rules.capabilities.session_affinity
    ):
        yield Problem(
            f"{a_key}.sessionAffinity",
            "cannot be combined with match and stepWeight/stepWeights: the routes that split "
            "the matching requests replace the sticky ones (Flagger's Istio router drops them, "
            "its Gateway API router then sends every matching request to the canary). Remove "
            "sessionAffinity, or match",
        )


def _semantic_problems(canary: Canary, default_provider: str | None) -> Iterable[Problem]:
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
    if spec.service is None and not is_knative(spec):  # a Knative Canary has none in Flagger
        yield Problem(
            "spec.service", "required: the service port the canary serves on (spec.service.port)"
        )
    yield from not_built_problems(spec)
    rules = router_rules(spec.provider) if spec.provider else None
    # match without iterations: the canary strategy, its weights split only the matching requests
    weighted_match = bool(analysis.match) and not analysis.effective_iterations
    stepped = analysis.step_weight is not None or analysis.step_weights is not None
    if rules is not None:
        if analysis.match and not rules.capabilities.ab_testing and not weighted_match:
            yield Problem(
                f"{a_key}.match",
                f"A/B testing needs a router that matches headers or cookies; the "
                f"{rules.label} router cannot route by header or cookie. Remove match, or use "
                f"one of {', '.join(routers_that(lambda c: c.ab_testing))}",
            )
        if analysis.session_affinity is not None and not rules.capabilities.session_affinity:
            yield Problem(
                f"{a_key}.sessionAffinity",
                f"the {rules.label} router cannot keep users on the canary with a cookie (Flagger "
                "ignores it there). Remove sessionAffinity, or use one of "
                f"{', '.join(routers_that(lambda c: c.session_affinity))}",
            )
        yield from rules.check(canary, a_key)
    if weighted_match and not stepped:
        yield Problem(f"{a_key}.iterations", "A/B testing (match) needs iterations > 0")
    elif weighted_match:
        # Without spec.provider the controller's --mesh-provider routes it: checked against that
        # router when the controller (or simulate) parses the Canary with its default.
        effective = rules or (router_rules(default_provider) if default_provider else None)
        yield from _weighted_match_problems(canary, effective, a_key)
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
                "and has neither templateRef nor query, so there is nothing to check (Flagger "
                "skips it silently and promotes without it). Add a templateRef or query, use a "
                "builtin name, or remove the metric",
            )
