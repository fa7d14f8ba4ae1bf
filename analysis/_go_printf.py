"""``printf`` in query templates, as Go's ``text/template`` runs it over string values.

Flagger's documentation templates use it to build a regex from several names (the Skipper
tutorial: ``{{ printf "kube(ew)?_%s__%s_canary__.*" namespace ingress }}``). Every value a
template can name is a string, so the verbs that format a string as itself are enough: ``%s``
and ``%v``, and ``%%`` for a percent sign. Anything Go would write as an error inside the query
(``%!s(MISSING)``, ``%!(EXTRA ...)``, ``%!d(string=...)``), and any other verb, flag or width, is a
``RenderError`` naming it instead: such a query could only fail at the metrics server.

Pure: no I/O, no dependency inside ``analysis`` but its errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analysis._errors import RenderError

#: An argument: an interpreted "string" (simple escapes), a `raw string`, or a bare word (a
#: model function or ``variables.KEY``).
_ARGUMENT = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|([A-Za-z_][A-Za-z0-9_.]*))')
_SIMPLE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_VERB = re.compile(r"%(.?)")
#: Characters of a template's text quoted in an error message (a 100,000-character action is
#: shown by its start, not echoed whole into validate's output and the Canary's events).
QUOTED_TEXT = 80


def clipped(text: str, limit: int = QUOTED_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with ``...`` and the full length when cut."""
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of an action: a string literal's text, or a name to evaluate."""

    text: str
    is_literal: bool


def go_string(body: str, source: str) -> str:
    """The text of an interpreted Go string literal's body (simple escapes only)."""
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped not in _SIMPLE_ESCAPES:
            raise RenderError(
                f"{source}: unsupported escape \\{escaped} in a template string; write it as a "
                "`raw string`"
            )
        out.append(_SIMPLE_ESCAPES[escaped])
    return "".join(out)


def split_arguments(text: str, source: str) -> list[Argument]:
    """The space-separated arguments of an action (``"fmt" namespace variables.k``)."""
    found: list[Argument] = []
    pos = 0
    # where only spaces are left (not text[pos:].strip() per argument: quadratic in an action of
    # 100,000 arguments, seconds of the controller's event loop on every render)
    end = len(text.rstrip())
    while pos < end:
        match = _ARGUMENT.match(text, pos)
        if match is None:
            rest = clipped(text[pos:end].strip())
            raise RenderError(
                f"{source}: cannot read the argument {rest!r}: arguments are strings and names "
                "(parentheses and pipelines are not supported)"
            )
        interpreted, raw, word = match.groups()
        if interpreted is not None:
            found.append(Argument(go_string(interpreted, source), is_literal=True))
        elif raw is not None:
            found.append(Argument(raw, is_literal=True))
        else:
            found.append(Argument(word, is_literal=False))
        pos = match.end()
        if pos < len(text) and not text[pos].isspace():
            raise RenderError(f"{source}: arguments must be separated by spaces: {clipped(text)!r}")
    return found


def sprintf(template: str, values: list[str], source: str) -> str:
    """Go's ``fmt.Sprintf(template, values...)`` for string values and the verbs %s, %v, %%."""
    out: list[str] = []
    remaining = iter(values)  # (not list.pop(0): quadratic in a format of 100,000 verbs)
    used = 0
    pos = 0
    for verb in _VERB.finditer(template):
        out.append(template[pos : verb.start()])
        pos = verb.end()
        letter = verb.group(1)
        if letter == "%":
            out.append("%")
            continue
        if letter not in ("s", "v"):
            shown = f"%{letter}" if letter else "a trailing %"
            raise RenderError(
                f"{source}: printf verb {shown} is not supported (every template value is a "
                "string: use %s)"
            )
        value = next(remaining, None)
        if value is None:
            raise RenderError(f"{source}: printf {clipped(template)!r} has more verbs than values")
        out.append(value)
        used += 1
    if used < len(values):
        raise RenderError(f"{source}: printf {clipped(template)!r} has more values than verbs")
    out.append(template[pos:])
    return "".join(out)
