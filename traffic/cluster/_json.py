"""Copies of Kubernetes bodies, for the clusters that keep objects and hand them out.

A body holds only dicts, lists and scalars (it came from JSON), so a two-case recursion is several
times faster than ``copy.deepcopy`` (no memo, no dispatch).

What a cluster *reads* out (``get``, ``list``) is read-only: the in-memory cluster and the
kubernetes-asyncio cluster's cache keep one read-only copy of each stored version and hand that
same copy to every reader, so a tick that reads the target Deployment nine times copies it at
most once per write instead of nine times (before, copies were about a third of a simulation's
time), and no reader can change what the cluster keeps: changing a read body raises
``TypeError``. A caller that wants to build on one copies it (``json_copy``) and writes it with
``patch``. What ``create`` and ``patch`` answer is a plain copy, the caller's own.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar, cast

_T = TypeVar("_T")


def json_copy(value: _T) -> _T:
    """A deep, plain (mutable) copy of the JSON value ``value``, read-only or not."""
    return cast(_T, _copy(value))


def read_only(value: _T) -> _T:
    """A deep copy of the JSON value ``value`` whose dicts and lists refuse every change. A
    read-only dict or list in it is taken as it is, not copied: only this function makes them,
    and they are read-only all the way down (so re-freezing a body built around read-only parts,
    e.g. one with a key dropped, copies only what is new)."""
    return cast(_T, _freeze(value))


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict or kind is ReadOnlyDict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list or kind is ReadOnlyList:
        return [_copy(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return ReadOnlyDict({k: _freeze(v) for k, v in value.items()})
    if kind is list:
        return ReadOnlyList([_freeze(v) for v in value])
    return value  # a scalar, or already read-only


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(
        "a body read from the cluster is read-only: change a copy (json_copy) and write it "
        "with patch"
    )


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses changes; JSON encoding, equality and reads work as on a dict.

    ``deepcopy`` and pickling give a plain, deep copy: the caller's. ``copy.copy`` and ``dict()``
    are plain at the top level only (nested values stay read-only): use ``json_copy`` to build
    on a body. PyYAML's safe dumper does not know these types: dump a ``json_copy``."""

    __slots__ = ()

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return cast(dict[str, Any], _copy(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ReadOnlyList(list[Any]):
    """A list that refuses changes (see ``ReadOnlyDict``)."""

    __slots__ = ()

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: Any) -> list[Any]:
        return cast(list[Any], _copy(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


# Every method that changes a dict or a list refuses (the types stay dict and list for readers).
for _name in (
    "__setitem__",
    "__delitem__",
    "__ior__",
    "clear",
    "pop",
    "popitem",
    "setdefault",
    "update",
):
    setattr(ReadOnlyDict, _name, _refuse)
for _name in (
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "sort",
    "reverse",
):
    setattr(ReadOnlyList, _name, _refuse)
