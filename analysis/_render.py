"""Render Flagger query templates (builtin, inline ``query`` and MetricTemplate ``spec.query``).

Flagger renders queries with Go's ``text/template`` and ``missingkey=error``, exposing the canary as
zero-argument functions. We support exactly that surface:

    {{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }}
    {{ variables.KEY }}     (a key of the metric's templateVariables)
    {{/* comment */}}       and Go's whitespace-trimming markers {{- ... -}}

Anything else (pipelines, printf, $variables) is a ``RenderError`` naming the action and the
template, as is a variable that is not set. Unlike Flagger, substituted values are escaped so that
no template variable or object name can change the structure of the query: the template text is
lexed (PromQL strings "..." '...' `...` and # comments) and each value is encoded for the place it
lands in — escaped inside a quoted string, and outside a string only accepted when it is a plain
token such as a duration, a number or a name (``[A-Za-z0-9_:.-]+``).

Pure: no I/O. Imports only ``config`` and ``analysis._errors``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from analysis._errors import RenderError
from config import Canary, Metric, format_interval

#: Functions of Flagger's MetricTemplateModel besides ``variables``.
MODEL_FUNCTIONS = ("name", "namespace", "target", "service", "ingress", "route", "interval")

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]+")
_VARIABLE = re.compile(r"variables\.([A-Za-z_][A-Za-z0-9_]*)")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Go's RE2 \s is ASCII whitespace without \v; Flagger's Prometheus client collapses runs of it.
_GO_SPACE = re.compile(r"[\t\n\f\r ]+")
_SUPPORTED = (
    "supported: {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, {{ ingress }}, "
    "{{ route }}, {{ interval }}, {{ variables.KEY }}"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateModel:
    """The values a query template can refer to (Flagger's MetricTemplateModel)."""

    name: str  # canary name
    namespace: str  # canary namespace
    target: str  # spec.targetRef.name
    service: str  # spec.service.name, else the target
    ingress: str  # spec.ingressRef.name, else the target
    route: str  # spec.routeRef.name, else the target
    interval: str  # the metric's window as a PromQL duration ("1m", "30s")
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_metric(cls, canary: Canary, metric: Metric) -> TemplateModel:
        """The model Flagger builds for one metric of a canary; the interval defaults to 1m (Q3)."""
        spec = canary.spec
        target = spec.target_ref.name
        return cls(
            name=canary.metadata.name,
            namespace=canary.metadata.namespace,
            target=target,
            service=spec.service_name,
            ingress=spec.ingress_ref.name if spec.ingress_ref is not None else target,
            route=spec.route_ref.name if spec.route_ref is not None else target,
            interval=format_interval(metric.interval_seconds),
            variables=dict(metric.template_variables or {}),
        )


def collapse_whitespace(query: str) -> str:
    """Collapse every whitespace run to one space, as Flagger does before sending a query."""
    return _GO_SPACE.sub(" ", query)


def render_query(template: str, model: TemplateModel, *, source: str) -> str:
    """Render ``template`` with ``model``; ``source`` names the template in error messages.

    Raise RenderError for an unknown function, a missing variable, a malformed action, or a value
    that cannot be placed safely where the template puts it.
    """
    out: list[str] = []
    lexer = _Lexer()
    pos = 0
    trim_next = False
    while True:
        start = template.find("{{", pos)
        if start < 0:
            tail = template[pos:]
            out.append(tail.lstrip() if trim_next else tail)
            break
        end = template.find("}}", start + 2)
        if end < 0:
            raise RenderError(f"{source}: action opened at {_where(template, start)} is not closed")
        literal = template[pos:start]
        if trim_next:
            literal = literal.lstrip()
        inner = template[start + 2 : end]
        # Go's trim markers are "{{- " and " -}}" (the space is required, "{{-3}}" is a number).
        if len(inner) >= 2 and inner[0] == "-" and inner[1] in " \t\r\n":
            literal = literal.rstrip()
            inner = inner[1:]
        trim_next = len(inner) >= 2 and inner[-1] == "-" and inner[-2] in " \t\r\n"
        if trim_next:
            inner = inner[:-1]
        out.append(literal)
        lexer.feed(literal)
        pos = end + 2
        action = inner.strip()
        if action.startswith("/*"):
            if not action.endswith("*/"):
                raise RenderError(f"{source}: comment at {_where(template, start)} is not closed")
            continue
        value = _evaluate(action, model, source)
        out.append(_place(value, action, lexer, source))
    return "".join(out)


def _evaluate(action: str, model: TemplateModel, source: str) -> str:
    found = _VARIABLE.fullmatch(action)
    if found is not None:
        key = found.group(1)
        if key not in model.variables:
            known = ", ".join(sorted(model.variables)) or "none"
            raise RenderError(
                f'{source}: variable "{key}" is not set; add it to the metric\'s '
                f"templateVariables (set: {known})"
            )
        return model.variables[key]
    if action in MODEL_FUNCTIONS:
        value: str = getattr(model, action)
        return value
    if action == "variables":
        raise RenderError(f"{source}: {{{{ variables }}}} is a map; write {{{{ variables.KEY }}}}")
    word = _IDENTIFIER.match(action)
    if word is not None and word.group(0) not in MODEL_FUNCTIONS and word.group(0) != "variables":
        raise RenderError(f'{source}: function "{word.group(0)}" not defined; {_SUPPORTED}')
    raise RenderError(f"{source}: unsupported action {{{{ {action} }}}}; {_SUPPORTED}")


def _place(value: str, action: str, lexer: _Lexer, source: str) -> str:
    """Encode ``value`` for the lexical context the template puts it in."""
    if lexer.pending_escape:
        # `"...\{{ x }}"`: the template's backslash would escape our first character (an
        # escaped quote could then close the string), so refuse instead of guessing.
        raise RenderError(
            f"{source}: {{{{ {action} }}}} follows a backslash inside a string literal; "
            "move the backslash or the action"
        )
    context = lexer.context
    if context in ('"', "'"):
        return _escape_quoted(value, context)
    if context == "`":
        if "`" in value:
            raise RenderError(
                f"{source}: the value of {{{{ {action} }}}} ({value!r}) contains a backtick and is "
                "placed inside a `raw string`, which cannot escape it"
            )
        return value
    if not _SAFE_TOKEN.fullmatch(value):
        reason = "is empty" if not value else f"is {value!r}"
        raise RenderError(
            f"{source}: {{{{ {action} }}}} is outside a quoted string, so its value must be a "
            "plain token (letters, digits, _ : . -) that cannot change the query's structure, "
            f"but it {reason}; quote the placeholder in the template or fix the value"
        )
    return value


def _escape_quoted(value: str, quote: str) -> str:
    out: list[str] = []
    for ch in value:
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _where(template: str, index: int) -> str:
    line = template.count("\n", 0, index) + 1
    column = index - (template.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


class _Lexer:
    """Tracks whether the template text so far ends inside a string literal or a comment.

    Only the template's own text is fed: substituted values are escaped for their context, so they
    can never move the lexer into a different state.
    """

    __slots__ = ("context", "pending_escape")

    def __init__(self) -> None:
        self.context: str | None = None  # None (code), '"', "'", '`' or '#' (comment)
        self.pending_escape = False

    def feed(self, text: str) -> None:
        for ch in text:
            ctx = self.context
            if self.pending_escape:
                self.pending_escape = False
            elif ctx is None:
                if ch in "\"'`":
                    self.context = ch
                elif ch == "#":
                    self.context = "#"
            elif ctx == "#":
                if ch == "\n":
                    self.context = None
            elif ctx == "`":
                if ch == "`":
                    self.context = None
            elif ch == "\\":
                self.pending_escape = True
            elif ch == ctx:
                self.context = None
