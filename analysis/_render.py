"""Render Flagger query templates (builtin, inline ``query`` and MetricTemplate ``spec.query``).

Flagger renders queries with Go's ``text/template`` and ``missingkey=error``, exposing the canary as
zero-argument functions. We support exactly that surface:

    {{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }}
    {{ variables.KEY }}     (a key of the metric's templateVariables)
    {{ index variables "KEY" }}  (the same, for any key: Go's only way to a key with a dash)
    {{ printf "fmt" ARG ... }}  (%s, %v and %% over names and strings: ``analysis._go_printf``)
    {{/* comment */}}       and Go's whitespace-trimming markers {{- ... -}}

Anything else (pipelines, parentheses, $variables, other functions) is a ``RenderError`` naming
the action and the template, as is a variable that is not set (also through ``index``, where
Go's would render an empty string: an empty label value selects other series than the author
meant).

Every template variable is a *string*: the template decides where it lands, and a template author
quotes it (``app="{{ target }}"``). The template text is lexed (PromQL strings "..." '...' `...`
and # comments) and each value is placed as its text, as Flagger substitutes it, except that it
can never change the structure of the query:

* inside a quoted string it is escaped for that string (a quote, a backslash or a control
  character cannot end the string or add to the query); inside a `raw string`, which has no
  escapes, a value holding a backtick is a ``RenderError``;
* outside a string it is only accepted when it is a plain token such as a duration, a number or a
  name (``[A-Za-z0-9_:.-]+``), else a ``RenderError``. Note that such a token is still PromQL:
  ``{{ target }}_total`` with the target ``my-app`` reads ``my - app_total`` (arithmetic), which is
  why name placeholders belong inside quotes;
* with ``escape_regex=True`` (the builtin queries, ``render_builtin`` in ``_builtins``) a value
  inside the string of a regex matcher (``=~"..."`` / ``!~"..."``) is first escaped for RE2
  (``regex_escape``), so ``destination_workload=~"{{ target }}"`` selects exactly the target
  ``secret.app`` and not ``secret-app`` as well; a value inside an equality matcher (``="..."`` /
  ``!="..."``) only gets the string escaping. A name made of ``[A-Za-z0-9_-]`` renders exactly as
  Flagger renders it (Kubernetes names differ only when they contain ``.``).

MetricTemplates and inline queries are rendered without ``escape_regex`` (Flagger compatibility):
there a value in ``=~"..."`` is part of the author's regex, as in Flagger.

Pure: no I/O. The values come in a ``TemplateModel`` (``analysis._template_model``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from analysis._errors import RenderError
from analysis._go_printf import Argument, clipped, split_arguments, sprintf
from analysis._template_model import TemplateModel

#: Functions of Flagger's MetricTemplateModel besides ``variables``.
MODEL_FUNCTIONS = ("name", "namespace", "target", "service", "ingress", "route", "interval")

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]+")
#: RE2's metacharacters: a backslash before any of them (punctuation) makes it literal.
_REGEX_META = re.compile(r"[\\.+*?()|\[\]{}^$]")
#: Escapes for a double- or single-quoted PromQL string (Go's strconv rules, as PromQL reads them).
_QUOTE_ESCAPES: dict[str, dict[int, str]] = {
    quote: {
        **{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)},
        ord("\\"): "\\\\",
        ord(quote): "\\" + quote,
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
    }
    for quote in ('"', "'")
}
_SPACE = " \t\r\n"
# Where the lexer's state can change: in code, at a quote or "#"; in a string, at a backslash or its
# quote (a `raw string` has no escapes); in a comment, at the end of the line.
_CODE_STOP = re.compile(r"[\"'`#]")
_STOPS = {
    '"': re.compile(r'[\\"]'),
    "'": re.compile(r"[\\']"),
    "`": re.compile(r"`"),
    "#": re.compile(r"\n"),
}
_VARIABLE = re.compile(r"variables\.([A-Za-z_][A-Za-z0-9_]*)")
#: An action that calls one of Go's builtins this renderer runs: ``printf`` or ``index``.
_CALL = re.compile(r"(printf|index)(?:\s+(.*))?", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Go's RE2 \s is ASCII whitespace without \v; Flagger's Prometheus client collapses runs of it.
_GO_SPACE = re.compile(r"[\t\n\f\r ]+")
_SUPPORTED = (
    "supported: {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, {{ ingress }}, "
    '{{ route }}, {{ interval }}, {{ variables.KEY }}, {{ index variables "KEY" }}, '
    '{{ printf "FORMAT" ARGUMENT... }}'
)


def collapse_whitespace(query: str) -> str:
    """Collapse every whitespace run to one space, as Flagger does before sending a query."""
    return _GO_SPACE.sub(" ", query)


def render_query(
    template: str, model: TemplateModel, *, source: str, escape_regex: bool = False
) -> str:
    """Render ``template`` with ``model``; ``source`` names the template in error messages.

    With ``escape_regex`` a value inside the string of a ``=~`` / ``!~`` matcher is escaped for
    RE2 before the string escaping, so it matches exactly itself (the builtin queries); without it
    the value is the template's text there, as in Flagger (MetricTemplates, inline queries).
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
        out.append(_place(value, action, lexer, source, escape_regex=escape_regex))
    return "".join(out)


class _AnyVariables(Mapping[str, str]):
    """templateVariables that hold every key (with a plain value): for checking a template's
    syntax before any Canary supplies its variables."""

    def __getitem__(self, key: str) -> str:
        return "x"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_ANY_MODEL = TemplateModel(
    name="x",
    namespace="x",
    target="x",
    service="x",
    ingress="x",
    route="x",
    interval="1m",
    variables=_AnyVariables(),
)


def syntax_problem(template: str, *, source: str) -> str | None:
    """Why ``template`` can render for no Canary (an unknown function, a malformed action), or
    None: ``validate`` reports it with the template instead of every check failing at run time.
    What depends on a Canary (its variables, its names' values) is not judged here."""
    try:
        render_query(template, _ANY_MODEL, source=source)
    except RenderError as exc:
        return str(exc)
    return None


def _evaluate(action: str, model: TemplateModel, source: str) -> str:
    call = _CALL.fullmatch(action)
    if call is None:
        return _value_of(action, model, source)
    function, arguments = call.group(1), split_arguments(call.group(2) or "", source)
    if function == "index":
        # index variables "KEY": Go's way to a key with a dash
        if len(arguments) != 2 or arguments[0] != Argument("variables", is_literal=False):
            raise RenderError(
                f'{source}: {{{{ {clipped(action)} }}}}: write {{{{ index variables "KEY" }}}}'
            )
        if not arguments[1].is_literal:
            raise RenderError(f"{source}: {{{{ {clipped(action)} }}}}: the key must be a string")
        return _variable(arguments[1].text, model, source)
    if not arguments or not arguments[0].is_literal:
        raise RenderError(
            f"{source}: {{{{ {clipped(action)} }}}}: printf needs a format string first"
        )
    values = [a.text if a.is_literal else _value_of(a.text, model, source) for a in arguments[1:]]
    return sprintf(arguments[0].text, values, source)


def _variable(key: str, model: TemplateModel, source: str) -> str:
    if key not in model.variables:
        known = clipped(", ".join(sorted(model.variables)) or "none")
        raise RenderError(
            f'{source}: variable "{clipped(key)}" is not set; add it to the metric\'s '
            f"templateVariables (set: {known})"
        )
    return model.variables[key]


def _value_of(name: str, model: TemplateModel, source: str) -> str:
    """The value of a name: a model function or ``variables.KEY``."""
    found = _VARIABLE.fullmatch(name)
    if found is not None:
        return _variable(found.group(1), model, source)
    if name in MODEL_FUNCTIONS:
        value: str = getattr(model, name)
        return value
    if name == "variables":
        raise RenderError(f"{source}: {{{{ variables }}}} is a map; write {{{{ variables.KEY }}}}")
    word = _IDENTIFIER.match(name)
    if word is not None and word.group(0) not in MODEL_FUNCTIONS and word.group(0) != "variables":
        raise RenderError(
            f'{source}: function "{clipped(word.group(0))}" not defined; {_SUPPORTED}'
        )
    raise RenderError(f"{source}: unsupported action {{{{ {clipped(name)} }}}}; {_SUPPORTED}")


def _place(value: str, action: str, lexer: _Lexer, source: str, *, escape_regex: bool) -> str:
    """Encode ``value`` for the lexical context the template puts it in."""
    if lexer.pending_escape:
        # `"...\{{ x }}"`: the template's backslash would escape our first character (an
        # escaped quote could then close the string), so refuse instead of guessing.
        raise RenderError(
            f"{source}: {{{{ {clipped(action)} }}}} follows a backslash inside a string literal; "
            "move the backslash or the action"
        )
    context = lexer.context
    if escape_regex and lexer.regex and context in ('"', "'", "`"):
        value = regex_escape(value)
    if context in ('"', "'"):
        return _escape_quoted(value, context)
    if context == "`":
        if "`" in value:
            raise RenderError(
                f"{source}: the value of {{{{ {clipped(action)} }}}} ({clipped(value)!r}) contains "
                "a backtick and is placed inside a `raw string`, which cannot escape it"
            )
        return value
    if not _SAFE_TOKEN.fullmatch(value):
        reason = "is empty" if not value else f"is {clipped(value)!r}"
        raise RenderError(
            f"{source}: {{{{ {clipped(action)} }}}} is outside a quoted string, so its value must "
            "be a plain token (letters, digits, _ : . -) that cannot change the query's structure, "
            f"but it {reason}; quote the placeholder in the template or fix the value"
        )
    return value


def quote_escape(value: str) -> str:
    """Escape ``value`` for a double-quoted PromQL string, as ``render_query`` places it there.

    A backslash, the quote and control characters are escaped; everything else is kept, so a
    value without them (every Kubernetes name) is unchanged.
    """
    return value.translate(_QUOTE_ESCAPES['"'])


def regex_escape(value: str) -> str:
    """Escape ``value`` so an RE2 (Go) regexp matches exactly it.

    Only RE2's metacharacters (``. + * ? ( ) [ ] { } | ^ $ \\``) get a backslash (a backslash
    before punctuation is always literal in RE2), so a name of ``[A-Za-z0-9_-]`` is unchanged.
    Inside a PromQL string the result is escaped again for the string (``\\.`` reads ``\\\\.``).
    """
    return _REGEX_META.sub(r"\\\g<0>", value)


def alternation(values: Sequence[str]) -> str:
    """``(?:v1|v2|...)``: an RE2 regexp matching exactly the given values (sorted, deduplicated)."""
    return "(?:" + "|".join(regex_escape(v) for v in sorted(set(values))) + ")"


def _escape_quoted(value: str, quote: str) -> str:
    return value.translate(_QUOTE_ESCAPES[quote])


def _where(template: str, index: int) -> str:
    line = template.count("\n", 0, index) + 1
    column = index - (template.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


class _Lexer:
    """Tracks whether the template text so far ends inside a string literal or a comment.

    Only the template's own text is fed: substituted values are escaped for their context, so they
    can never move the lexer into a different state. ``regex`` tells whether the string being read
    is the value of a regex matcher (its opening quote follows ``=~`` or ``!~``, spaces aside).
    """

    __slots__ = ("_last", "context", "pending_escape", "regex")

    def __init__(self) -> None:
        self.context: str | None = None  # None (code), '"', "'", '`' or '#' (comment)
        self.pending_escape = False
        self.regex = False  # the current string is a =~ / !~ matcher's regexp
        # the last two non-space characters of code read, and " " if spaces followed them
        self._last = ""

    def feed(self, text: str) -> None:
        pos, end = 0, len(text)
        if self.pending_escape and text:
            self.pending_escape = False
            pos = 1  # the escaped character
        while pos < end:
            ctx = self.context
            if ctx is None:
                found = _CODE_STOP.search(text, pos)
                stop = end if found is None else found.start()
                self._remember(text[pos:stop])
                if found is None:
                    return
                ch = text[stop]
                if ch != "#":
                    self.regex = self._last.rstrip(_SPACE) in ("=~", "!~")
                    self._last = ""
                self.context = ch
                pos = stop + 1
                continue
            found = _STOPS[ctx].search(text, pos)
            if found is None:
                return
            stop = found.start()
            if text[stop] == "\\":  # only inside "..." and '...'
                if stop + 1 == end:
                    self.pending_escape = True
                    return
                pos = stop + 2
            else:  # the closing quote, or the newline ending a comment
                self.context = None
                pos = stop + 1

    def _remember(self, code: str) -> None:
        if not code:
            return
        joined = self._last + code
        core = joined.rstrip(_SPACE)
        self._last = core[-2:] + (" " if len(core) < len(joined) else "")
