"""``parse_canary`` for a caller that reads the same Canary again and again (a controller tick).

Every tick writes the Canary's status, so every tick reads a body with a new status and a new
``resourceVersion`` and, most of the time, nothing else new. Validating the whole spec again
(pydantic, then the rules) was the largest single cost of an idle tick; the rest of the body is
compared with the one last parsed as its JSON text (C code, and exact: ``1`` and ``true`` are
different texts where Python's ``==`` takes them for equal). On a match the Canary last parsed is
handed back with this body's status and ``resourceVersion``: what ``parse_canary`` would return
for it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from config._loading import parse_canary
from config._spec import Canary

#: Metadata that changes with every write of the object and that no rule or router reads.
_VOLATILE_METADATA = "resourceVersion"


class CanaryMemo:
    """One Canary's last parse. ``parse(body)`` equals ``parse_canary(body, default_provider=)``
    (and raises the same SpecError); it validates again only when something but the status and
    ``metadata.resourceVersion`` differs from the last body that parsed."""

    __slots__ = ("_canary", "_key")

    def __init__(self) -> None:
        self._key: str | None = None
        self._canary: Canary | None = None

    def parse(self, body: Mapping[str, Any], *, default_provider: str | None = None) -> Canary:
        status = body.get("status")
        key = _key(body, default_provider)
        if (
            self._canary is not None
            and key == self._key
            and (status is None or isinstance(status, dict))
        ):
            return self._with_volatile(self._canary, body, status)
        self._key = self._canary = None  # a failing parse leaves nothing to match
        # From a copy: the parse keeps parts of what it was given (free-form fields, lists of
        # metadata), which must not change with the caller's body after this tick.
        canary = parse_canary(copy.deepcopy(body), default_provider=default_provider)
        self._key, self._canary = key, canary
        return canary

    @staticmethod
    def _with_volatile(canary: Canary, body: Mapping[str, Any], status: Any) -> Canary:
        version = (body.get("metadata") or {}).get(_VOLATILE_METADATA)
        metadata = canary.metadata
        if (metadata.model_extra or {}).get(_VOLATILE_METADATA) != version:
            metadata = metadata.model_copy(update={_VOLATILE_METADATA: version})
        # A plain dict, as validation makes one (a body from the cluster's cache is read-only).
        status = None if status is None else dict(status)
        return canary.model_copy(update={"status": status, "metadata": metadata})


def _key(body: Mapping[str, Any], default_provider: str | None) -> str:
    """The body without its status and its resourceVersion's value (whether it has one stays in),
    as JSON text, with the provider the rules were checked against."""
    stable = {k: v for k, v in body.items() if k != "status"}
    metadata = stable.get("metadata")
    if isinstance(metadata, dict) and _VOLATILE_METADATA in metadata:
        stable["metadata"] = {
            k: (True if k == _VOLATILE_METADATA else v) for k, v in metadata.items()
        }
    return json.dumps([default_provider, stable], default=_not_json)


def _not_json(value: object) -> list[str]:
    """A value JSON has no text for (a YAML date, say), as its type and repr: never equal to a
    string or number, nor to a value of another type."""
    return [type(value).__qualname__, repr(value)]
