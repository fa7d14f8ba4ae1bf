"""Reading manifest files: YAML documents as Kubernetes reads them, within bounds.

``read_documents`` reads YAML as libyaml parses it (the C library go-yaml, kubectl's parser, was
ported from; PyYAML's own parser where PyYAML lacks libyaml) with ``yaml.SafeLoader``'s types,
plus what a manifest must keep (README "Input bounds"):
no duplicate keys, bounded nesting and alias expansion, 64-bit integers, dates and ``1e3`` read as
the API server's YAML reads them. Every error names the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from config.errors import Problem, SpecError, short


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
                    f"duplicate key {short(key)} (first at {source}:{first.line + 1}); YAML keeps "
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


try:  # libyaml's scanner and parser (PyYAML's wheels carry it): the same events, 7x faster
    from yaml._yaml import CParser as _EventSource
except ImportError:  # pragma: no cover  (a PyYAML built without libyaml)

    class _EventSource(  # type: ignore[no-redef]
        yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser
    ):
        """PyYAML's own reader, scanner and parser, where it has no libyaml."""

        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _ManifestLoader(
    yaml.composer.Composer,
    _EventSource,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """``yaml.SafeLoader`` that refuses duplicate keys, runaway nesting and alias bombs.

    The events come from libyaml when PyYAML has it (scanning and parsing are most of a read; the
    YAML is the same, libyaml being the reference parser PyYAML's Python one follows), and are
    composed into nodes here, in Python, so that composition can keep the bounds: it tracks each
    node's size and depth as if its aliases were expanded, so a bomb is refused before anything
    expands it (libyaml's own composer could not be stopped). Construction turns every value a
    manifest could not hold (an invalid date, a huge integer) into a marked error.
    """

    def __init__(self, stream: str) -> None:
        _EventSource.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        yaml.composer.Composer.__init__(self)
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
            event: Any = self.peek_event()
            node: yaml.Node | None = super().compose_node(parent, index)
            if node is not None and node not in self._expanded:
                raise _Refused(
                    f"alias *{event.anchor} refers to a collection that contains it; a manifest "
                    "cannot be recursive",
                    event.start_mark,
                )
            return node
        if self._depth >= MAX_YAML_DEPTH:
            upcoming: Any = self.peek_event()
            raise _Refused(
                f"nested more than {MAX_YAML_DEPTH} levels deep; a manifest needs far fewer",
                upcoming.start_mark,
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
                f"cannot read {short(node.value)} as !!{tag} ({type(exc).__name__}: {exc})",
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
        position = max(0, exc.position)
        if exc.encoding == "unicode":  # PyYAML's Python reader counts characters
            line = text.count("\n", 0, position) + 1
        else:  # libyaml counts the bytes of the UTF-8 it was given
            line = text.encode("utf-8")[:position].count(b"\n") + 1
        return Problem(
            f"line {line}",
            f"invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})",
        )
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    reason = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, _Refused):
        return Problem(where, f"refused: {reason}")
    if "maximum nesting depth" in reason:
        # libyaml (PyYAML >= 6.0.4's) stops at 1,000 levels while scanning, before the composer
        # has seen the 100th: the same refusal
        return Problem(
            where,
            f"refused: nested more than {MAX_YAML_DEPTH} levels deep; a manifest needs far fewer",
        )
    return Problem(where, f"invalid YAML: {reason}")
