"""A fake Kubernetes API server over real HTTP, for tests of code that speaks to the API server.

``serve_kube_api()`` starts an ``aiohttp.web`` server on 127.0.0.1 (a free port) and yields a
``FakeKubeApi``; kubernetes-asyncio (or anything else that speaks HTTP) talks to it for real,
so tests exercise the client library's URL building, content types, status handling and watch
streaming rather than a monkeypatched stand-in (respx and aioresponses cannot intercept
kubernetes-asyncio 36 / aiohttp 3.14; see docs/dependency-notes.md §5).

What it serves, for any ``/api/v1/...`` or ``/apis/{group}/{version}/...`` resource (core
services, configmaps, secrets, events; apps deployments; autoscaling HPAs; coordination leases;
any custom resource such as flagger.app canaries, Istio, Gateway API, ingresses):

* GET (one object), LIST (namespaced or all namespaces; ``labelSelector`` with ``=``, ``==``,
  ``!=``, ``key`` and ``!key``; ``fieldSelector`` on ``metadata.name`` / ``metadata.namespace``),
  answering ``XxxList`` objects with ``metadata.resourceVersion``; ``limit`` / ``continue``
  pages (an opaque token, every page at the first one's resourceVersion, with
  ``remainingItemCount``); like the real server, items
  of built-in kinds carry no ``apiVersion``/``kind`` in lists, custom resources do;
* POST (201; ``generateName``; 409 ``AlreadyExists``; a ``metadata.resourceVersion`` answers
  500, as etcd storage does), PUT (409 ``Conflict`` on a stale ``metadata.resourceVersion``),
  DELETE (404 when missing; optional ``preconditions``; an object with ``finalizers`` is only
  marked with ``deletionTimestamp`` and goes when a write removes its last finalizer); a write
  cannot rename or move an object (400) nor change server-owned metadata;
* PATCH with ``application/merge-patch+json`` (RFC 7386, applied by
  ``traffic.cluster.apply_merge_patch``: the one implementation ``InMemoryCluster`` uses too),
  ``application/json-patch+json`` (RFC 6902 by the ``jsonpatch`` library, a failed ``test``
  answers 422) and ``application/strategic-merge-patch+json`` (treated as a merge patch; 415 for
  a custom resource, as the real server answers); a
  ``metadata.resourceVersion`` in the patched result that differs from the stored one answers
  409, as the real server's optimistic concurrency does; anything else answers 415;
* the ``/status`` subresource for every kind except configmaps, secrets, events and leases:
  status writes change only ``.status``, main-resource writes keep the stored ``.status``,
  ``metadata.generation`` is bumped when anything outside metadata/status changes; the
  ``/scale`` subresource of apps deployments (an ``autoscaling/v1`` ``Scale``);
* WATCH (``?watch=true``): without ``resourceVersion`` (or with ``0``) the current objects
  first as ADDED, then live events; with ``resourceVersion=N`` the events after N replayed from a
  bounded history, or, when N is older than the history, one ERROR event carrying a 410
  ``Expired`` Status (HTTP 200, as the real server does); ``timeoutSeconds`` ends the stream;
  ``allowWatchBookmarks`` enables ``bookmark()``;
* a storage per (group, plural): one object is visible under every version of its group, with
  the ``apiVersion`` of the URL it was read through (HTTPRoute v1 and v1beta1 are one object);
* kube-apiserver's validation of the built-in kinds canary-engine writes (Deployments,
  DaemonSets, Services, ConfigMaps, Secrets, core/v1 Events, HPAs, Leases, Ingresses;
  ``tests/builtin_validation.py``): a create or update the real server refuses answers 422
  ``Invalid`` with its message; a Service gets a ``clusterIP`` on create and an update that
  leaves it out keeps it (``patchAllocatedValues``). ``builtins=False`` turns this off, for tests
  of the server's generic behaviour that store toy objects.

Errors are ``Status`` objects with ``reason``, ``code``, ``message`` and ``details``.

Test helpers: ``store`` (seed / read / remove objects without counting requests, ``compact()``
the watch history), ``fail_next`` (the next N matching requests answer 5xx or any status),
``stall_next`` (the next N matching requests hang until released, for client timeouts),
``drop_watches`` (end or abort every open watch), ``requests`` / ``count`` / ``reads`` (request
counters by (verb, resource)), ``log`` (every request, as a ``RecordedRequest``: method, path,
query, Kubernetes verb, API group, resource/subresource, namespace, name, token, body; what an
RBAC check needs) and ``write_kubeconfig``.

Test-only module: may use real time (watch ``timeoutSeconds``, creation timestamps).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch  # type: ignore[import-untyped]
import jsonpointer  # type: ignore[import-untyped]
from aiohttp import web

from tests.builtin_validation import KINDS as BUILTIN_KINDS
from tests.builtin_validation import (
    ClusterIPs,
    decode_error,
    invalid_message,
    normalize_service,
    validate,
)
from tests.crd_schema import invalid_fields, prune_object, schema_for
from traffic.cluster import apply_merge_patch

Body = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

#: API groups served by kube-apiserver itself: their list items carry no apiVersion/kind.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "autoscaling",
        "batch",
        "policy",
        "coordination.k8s.io",
        "networking.k8s.io",
        "events.k8s.io",
        "discovery.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    }
)

#: (group, plural) of resources that have no status subresource (``.status`` is plain data).
NO_STATUS_SUBRESOURCE = frozenset(
    {("", "configmaps"), ("", "secrets"), ("", "events"), ("coordination.k8s.io", "leases")}
)

#: (group, plural) with a ``/scale`` subresource.
SCALABLE = frozenset({("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets")})

#: Kind name -> plural, for seeding bodies and naming List kinds.
PLURALS: dict[str, str] = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Event": "events",
    "Pod": "pods",
    "Namespace": "namespaces",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses",
    "Lease": "leases",
    "Canary": "canaries",
    "MetricTemplate": "metrictemplates",
    "AlertProvider": "alertproviders",
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
    "HTTPRoute": "httproutes",
}

_SERVER_METADATA = (
    "uid",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "name",
    "namespace",
)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool


class ApiError(Exception):
    """An error answer: becomes a ``Status`` body with this code and reason."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def status_body(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> Body:
    """A ``Status`` object as the API server writes it for errors."""
    body: Body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return body


# ---------------------------------------------------------------------------- patch semantics


class _PatchError(Exception):
    pass


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) by the ``jsonpatch`` library, on a
    copy of ``document``; ``_PatchError`` when an operation is malformed or fails."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise _PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(document, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise _PatchError(str(e)) from e


# ---------------------------------------------------------------------------- selectors


def parse_label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """Equality-based selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a`` joined by commas."""
    # (key, operator, value): "=" equal, "!=" not equal, "exists", "!exists"
    requirements: list[tuple[str, str, str]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        if re.search(r"\s(in|notin)\s", raw):
            raise ApiError(400, "BadRequest", f"unsupported set-based selector {raw!r}")
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            requirements.append((key.strip(), "!=", value.strip()))
        elif "=" in raw:
            key, value = raw.replace("==", "=").split("=", 1)
            requirements.append((key.strip(), "=", value.strip()))
        elif raw.startswith("!"):
            requirements.append((raw[1:].strip(), "!exists", ""))
        else:
            requirements.append((raw, "exists", ""))

    def matches(labels: Mapping[str, str]) -> bool:
        for key, op, value in requirements:
            if op == "=" and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
            if op == "exists" and key not in labels:
                return False
            if op == "!exists" and key in labels:
                return False
        return True

    return matches


def _write_continue(after: list[Any], resource_version: str) -> str:
    """A LIST's continue token: the key the next page starts after, and the list's version
    (opaque to clients, as the real server's is)."""
    raw = json.dumps({"after": after, "rv": resource_version}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_continue(token: str) -> tuple[list[Any] | None, str]:
    if not token:
        return None, ""
    try:
        found = json.loads(base64.urlsafe_b64decode(token.encode()))
        return list(found["after"]), str(found["rv"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "BadRequest", "continue key is not valid") from None


def _parse_field_selector(text: str) -> Callable[[Mapping[str, Any]], bool]:
    wanted: list[tuple[str, str, bool]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        negate = "!=" in raw
        key, value = raw.replace("==", "=").replace("!=", "=").split("=", 1)
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
        wanted.append((key.split(".", 1)[1], value, negate))
    return lambda meta: all((str(meta.get(k, "")) == v) != neg for k, v, neg in wanted)


# ---------------------------------------------------------------------------- the store


def _singular_kind(plural: str) -> str:
    stem = plural[:-3] + "y" if plural.endswith("ies") else plural.rstrip("s")
    return stem[:1].upper() + stem[1:]


def plural_of(kind: str) -> str:
    """The resource plural of a kind name (table, then English-ish rules)."""
    if kind in PLURALS:
        return PLURALS[kind]
    low = kind.lower()
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + ("es" if low.endswith("s") else "s")


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _split_resource(resource: str) -> tuple[str, str]:
    plural, _, group = resource.partition(".")
    return group, plural


def _rv_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Change:
    rv: int
    group: str
    plural: str
    type: str
    body: Body


@dataclass(eq=False, slots=True)
class _Watch:
    group: str
    version: str
    plural: str
    namespace: str | None
    labels: Callable[[Mapping[str, str]], bool]
    fields: Callable[[Mapping[str, Any]], bool]
    bookmarks: bool
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    def wants(self, group: str, plural: str, body: Mapping[str, Any]) -> bool:
        meta = body.get("metadata") or {}
        return (
            (group, plural) == (self.group, self.plural)
            and (self.namespace is None or meta.get("namespace", "") == self.namespace)
            and self.labels(meta.get("labels") or {})
            and self.fields(meta)
        )


class KubeStore:
    """The server's state: objects per (group, plural), one resourceVersion counter, history.

    Helpers take a ``resource`` in kubectl's ``plural.group`` form (``deployments.apps``,
    ``canaries.flagger.app``, ``services``). They bypass the HTTP layer: nothing is counted,
    but watchers see the changes like any other write.
    """

    def __init__(self, history_limit: int = 1000) -> None:
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Body]] = {}
        self._kinds: dict[tuple[str, str], str] = {}
        self._rv = 0
        self._serial = 0
        self._history: deque[_Change] = deque(maxlen=history_limit)
        self._compacted = 0  # watches from a resourceVersion below this answer 410 Gone
        self._watches: set[_Watch] = set()

    # -- helpers for tests

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion handed out (what a List would answer now)."""
        return str(self._rv)

    def put(self, body: Body, *, plural: str | None = None) -> Body:
        """Create or replace an object as it exists in the cluster (status kept); a copy back.

        ``plural`` defaults to the plural of ``body["kind"]``; ``metadata.namespace`` to
        ``default``. Keeps uid and creationTimestamp of a replaced object.
        """
        group, _ = _split_api_version(body["apiVersion"])
        plural = plural or plural_of(body["kind"])
        stored = copy.deepcopy(body)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        key = (meta["namespace"], meta["name"])
        current = self._objects.get((group, plural), {}).get(key)
        if current is not None:
            for k in ("uid", "creationTimestamp"):
                meta[k] = current["metadata"][k]
            meta.setdefault("generation", current["metadata"].get("generation", 1))
            self._commit(group, plural, key, stored, "MODIFIED")
        else:
            self._fill_new_metadata(meta)
            meta.setdefault("generation", 1)
            self._commit(group, plural, key, stored, "ADDED")
        return copy.deepcopy(stored)

    def seed(self, *bodies: Body) -> None:
        """``put`` each body."""
        for body in bodies:
            self.put(body)

    def get(self, resource: str, namespace: str, name: str) -> Body | None:
        """A copy of the stored object, or None."""
        found = self._objects.get(_split_resource(resource), {}).get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def objects(self, resource: str, namespace: str | None = None) -> list[Body]:
        """Copies of the stored objects of a resource (one namespace or all), by name."""
        bucket = self._objects.get(_split_resource(resource), {})
        return [
            copy.deepcopy(bucket[k])
            for k in sorted(bucket)
            if namespace is None or k[0] == namespace
        ]

    def remove(self, resource: str, namespace: str, name: str) -> Body | None:
        """Delete an object (watchers see DELETED); the deleted body, or None if missing."""
        group, plural = _split_resource(resource)
        return self._delete(group, plural, (namespace, name))

    def compact(self) -> None:
        """Forget the watch history, like etcd compaction.

        Every watch from an older resourceVersion then answers 410 Gone.
        """
        self._history.clear()
        self._compacted = self._rv

    # -- operations used by the HTTP layer

    def bucket(self, group: str, plural: str) -> dict[tuple[str, str], Body]:
        return self._objects.setdefault((group, plural), {})

    def known_kind(self, group: str, plural: str) -> str | None:
        """The kind name of a resource if known (from the table or a stored object)."""
        if (group, plural) in self._kinds:
            return self._kinds[(group, plural)]
        return next((k for k, p in PLURALS.items() if p == plural), None)

    def kind_name(self, group: str, plural: str) -> str:
        return self.known_kind(group, plural) or _singular_kind(plural)

    def create(self, group: str, plural: str, body: Body) -> Body:
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self.bucket(group, plural):
            raise ApiError(
                409,
                "AlreadyExists",
                f'{_resource_name(group, plural)} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": group, "kind": plural},
            )
        self._fill_new_metadata(meta)
        meta["generation"] = 1
        self._commit(group, plural, key, body, "ADDED")
        return body

    def update(self, group: str, plural: str, key: tuple[str, str], body: Body) -> Body:
        """Store a new version of an existing object unless nothing changed."""
        if body == self.bucket(group, plural)[key]:
            return body
        self._commit(group, plural, key, body, "MODIFIED")
        return body

    def _fill_new_metadata(self, meta: Body) -> None:
        self._serial += 1
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now_rfc3339()
        meta.pop("resourceVersion", None)

    def generate_name(self, prefix: str) -> str:
        self._serial += 1
        n, suffix = self._serial, ""
        for _ in range(5):
            n, digit = divmod(n * 7919 + 13, len(_NAME_ALPHABET))
            suffix += _NAME_ALPHABET[digit]
        return prefix + suffix

    def _commit(
        self, group: str, plural: str, key: tuple[str, str], body: Body, type_: str
    ) -> None:
        self._rv += 1
        body["metadata"]["resourceVersion"] = str(self._rv)
        self.bucket(group, plural)[key] = body
        if body.get("kind"):
            self._kinds[(group, plural)] = body["kind"]
        self._record(group, plural, type_, body)

    def _delete(self, group: str, plural: str, key: tuple[str, str]) -> Body | None:
        body = self.bucket(group, plural).pop(key, None)
        if body is None:
            return None
        self._rv += 1
        body["metadata"]["resourceVersion"] = str(self._rv)
        self._record(group, plural, "DELETED", body)
        return copy.deepcopy(body)

    def _record(self, group: str, plural: str, type_: str, body: Body) -> None:
        change = _Change(self._rv, group, plural, type_, copy.deepcopy(body))
        if self._history.maxlen is not None and len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        self._history.append(change)
        for watch in self._watches:
            if watch.wants(group, plural, body):
                watch.queue.put_nowait(("event", change))

    def subscribe(self, watch: _Watch, since: str | None) -> list[tuple[str, Any]]:
        """Register a watch; the backlog it must send first (or an ERROR 410)."""
        bucket = self.bucket(watch.group, watch.plural)
        if since in (None, "", "0"):
            self._watches.add(watch)
            backlog = [
                _Change(self._rv, watch.group, watch.plural, "ADDED", copy.deepcopy(bucket[k]))
                for k in sorted(bucket, key=lambda k: int(bucket[k]["metadata"]["resourceVersion"]))
                if watch.wants(watch.group, watch.plural, bucket[k])
            ]
            return [("event", c) for c in backlog]
        start = _rv_int(since)
        if start is None:
            raise ApiError(400, "BadRequest", f'invalid resource version "{since}"')
        if start < self._compacted:
            gone = status_body(
                410, "Expired", f"too old resource version: {start} ({self._compacted + 1})"
            )
            return [("error", gone)]
        self._watches.add(watch)
        return [
            ("event", c)
            for c in self._history
            if c.rv > start and watch.wants(c.group, c.plural, c.body)
        ]

    def unsubscribe(self, watch: _Watch) -> None:
        self._watches.discard(watch)

    def signal_watches(self, message: str, payload: Any = None) -> int:
        for watch in self._watches:
            watch.queue.put_nowait((message, payload))
        return len(self._watches)


def _resource_name(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


# ---------------------------------------------------------------------------- the HTTP layer


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path addresses."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``plural`` or ``plural/subresource``, as the request counters key it."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural


def parse_path(path: str) -> Target | None:
    """The resource a ``/api/...`` or ``/apis/...`` path addresses, or None."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 3:
        return None
    return Target(
        group,
        version,
        rest[0],
        namespace,
        rest[1] if len(rest) > 1 else None,
        rest[2] if len(rest) > 2 else None,
    )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the API server's authorizer sees it: ``verb`` is the Kubernetes verb
    (GET of one object ``get``, of a collection ``list``, with ``watch=true`` ``watch``; POST
    ``create``, PUT ``update``, PATCH ``patch``, DELETE ``delete``/``deletecollection``);
    ``resource`` is ``plural`` or ``plural/subresource`` (``canaries/status``); ``group`` is the
    API group (``""`` for the core group), ``namespace`` and ``name`` None when not in the path."""

    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str
    content_type: str
    authorization: str | None
    body: Any
    group: str = ""
    namespace: str | None = None
    name: str | None = None


@dataclass(slots=True)
class _Rule:
    remaining: int
    method: str | None
    path: str
    status: int = 500
    reason: str = "InternalError"
    message: str = "injected failure"
    retry_after: int | None = None
    token: str | None = None

    def matches(self, request: web.Request) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method.upper() == request.method)
            and self.path in request.path_qs
            and (
                self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}"
            )
        )


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",  # a too old resourceVersion or continue token, as the real server says
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class FakeKubeApi:
    """The running fake: ``url``, ``store`` and the fault-injection / counting helpers."""

    def __init__(
        self,
        *,
        history_limit: int = 1000,
        token: str | None = None,
        crds: bool = True,
        builtins: bool = True,
    ) -> None:
        self.store = KubeStore(history_limit)
        self.token = token
        #: Hold flagger.app writes to config/deploy/crd as the API server does (tests/crd_schema).
        self.crds = crds
        #: Validate writes of built-in kinds as kube-apiserver does (tests/builtin_validation).
        self.builtins = builtins
        self._cluster_ips = ClusterIPs()
        self.url = ""
        #: Requests per (verb, resource): verbs get, list, watch, create, update, patch, delete;
        #: resource ``plural`` or ``plural/subresource``.
        self.requests: Counter[tuple[str, str]] = Counter()
        self.log: list[RecordedRequest] = []
        #: ``plural/namespace/name: path`` of every field a write sent that the CRD does not
        #: declare, dropped as the API server drops it.
        self.pruned: list[str] = []
        self._faults: list[_Rule] = []
        self._stalls: list[_Rule] = []
        self._release = asyncio.Event()
        self._stalled = 0
        self._open_watches = 0
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- helpers for tests

    def fail_next(
        self,
        n: int = 1,
        *,
        method: str | None = None,
        path: str = "",
        status: int = 500,
        reason: str | None = None,
        message: str = "injected failure",
        retry_after: int | None = None,
        token: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests whose method matches and whose path+query contains
        ``path`` with ``status`` (a Status body; a ``Retry-After`` header when ``retry_after``
        is given, as the API server sends with 429). ``token``: only the requests of the user
        with that bearer token (an RBAC refusal). Rules are checked in the order added."""
        self._faults.append(
            _Rule(
                n,
                method,
                path,
                status,
                reason or _REASONS.get(status, "Unknown"),
                message,
                retry_after,
                token,
            )
        )

    def clear_faults(self) -> None:
        """Forget every pending ``fail_next`` and ``stall_next`` rule (held requests stay held)."""
        self._faults.clear()
        self._stalls.clear()

    def stall_next(self, n: int = 1, *, method: str | None = None, path: str = "") -> None:
        """Hold the next ``n`` matching requests unanswered until ``release_stalled()``."""
        self._stalls.append(_Rule(n, method, path))

    def release_stalled(self) -> None:
        """Let every held request proceed (they answer normally)."""
        self._release.set()
        self._release = asyncio.Event()

    @property
    def stalled(self) -> int:
        """How many requests are being held right now."""
        return self._stalled

    @property
    def open_watches(self) -> int:
        """Watch streams currently open."""
        return self._open_watches

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch stream: cleanly (the response ends, as on a server-side
        timeout) or, with ``abort``, by cutting the connection. How many were dropped."""
        return self.store.signal_watches("abort" if abort else "end")

    def send_raw(self, line: bytes) -> int:
        """Write ``line`` as it is into every open watch stream (a malformed event)."""
        return self.store.signal_watches("raw", line)

    def bookmark(self) -> int:
        """Send a BOOKMARK at the current resourceVersion to watches that allow bookmarks."""
        return self.store.signal_watches("bookmark")

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Requests counted so far for a verb and/or resource (None: any)."""
        return sum(
            n
            for (v, r), n in self.requests.items()
            if (verb is None or v == verb) and (resource is None or r == resource)
        )

    def reads(self) -> int:
        """GET and LIST requests so far (watches not included)."""
        return self.count("get") + self.count("list")

    def reset_counts(self) -> None:
        """Zero the counters and the request log."""
        self.requests.clear()
        self.log.clear()

    def kubeconfig(self, *, namespace: str = "default") -> Body:
        """A kubeconfig (as a dict) whose current context points at this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token or "fake-token"}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], *, namespace: str = "default") -> Path:
        """Write ``kubeconfig()`` to ``path`` (JSON, which is YAML); the path back."""
        target = Path(path)
        target.write_text(json.dumps(self.kubeconfig(namespace=namespace), indent=2))
        return target

    # -- request handling

    async def handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._handle(request)
        except ApiError as e:
            return _error_response(e)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in ("/version", "/version/"):
            return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"})
        target = parse_path(request.path)
        query = dict(request.query)
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = ...
        verb = _verb(request.method, target, query)
        resource = target.resource if target else request.path
        self.requests[(verb, resource)] += 1
        self.log.append(
            RecordedRequest(
                request.method,
                request.path,
                query,
                verb,
                resource,
                request.headers.get("Content-Type", ""),
                request.headers.get("Authorization"),
                payload,
                target.group if target else "",
                target.namespace if target else None,
                target.name if target else None,
            )
        )
        if self.token is not None and request.headers.get("Authorization") != (
            f"Bearer {self.token}"
        ):
            raise ApiError(401, "Unauthorized", "Unauthorized")
        for rule in self._faults:
            if rule.matches(request):
                rule.remaining -= 1
                retry = {"Retry-After": str(rule.retry_after)} if rule.retry_after else None
                raise ApiError(rule.status, rule.reason, rule.message, headers=retry)
        for rule in self._stalls:
            if rule.matches(request):
                rule.remaining -= 1
                self._stalled += 1
                try:
                    await self._release.wait()
                finally:
                    self._stalled -= 1
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if payload is ...:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON")
        return await self._dispatch(request, target, query, payload)

    async def _dispatch(
        self, request: web.Request, target: Target, query: dict[str, str], payload: Any
    ) -> web.StreamResponse:
        method = request.method
        if target.subresource is not None:
            self._check_subresource(target)
        if method == "GET" and target.name is None:
            if query.get("watch") in _TRUE:
                return await self._watch(request, target, query)
            return web.json_response(self._list(target, query))
        if method == "POST" and target.name is None:
            return web.json_response(self._create(target, payload), status=201)
        if target.name is None or method not in ("GET", "PUT", "PATCH", "DELETE"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        if method == "PUT":
            if not isinstance(payload, dict):
                raise ApiError(400, "BadRequest", "the body of a PUT must be an object")
            _check_name(target, payload)
        key = (target.namespace or "", target.name)
        current = self.store.bucket(target.group, target.plural).get(key)
        if current is None:
            raise _not_found(target)
        if method == "GET":
            if target.subresource == "scale":
                return web.json_response(_scale_of(current))
            return web.json_response(self._out(target, current))
        if method == "DELETE":
            return web.json_response(self._delete(target, key, current, payload))
        if method == "PUT":
            wanted = payload
        else:
            wanted = _apply_patch(
                _scale_of(current) if target.subresource == "scale" else current,
                payload,
                request.headers.get("Content-Type", ""),
                custom=target.group not in BUILTIN_GROUPS,
            )
        return web.json_response(self._write(target, key, current, wanted, put=method == "PUT"))

    def _check_subresource(self, target: Target) -> None:
        pair = (target.group, target.plural)
        if target.name is None or not (
            (target.subresource == "status" and pair not in NO_STATUS_SUBRESOURCE)
            or (target.subresource == "scale" and pair in SCALABLE)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _out(self, target: Target, body: Body, *, in_list: bool = False) -> Body:
        out = copy.deepcopy(body)
        if in_list and target.group in BUILTIN_GROUPS:
            out.pop("apiVersion", None)
            out.pop("kind", None)
        else:
            out["apiVersion"] = target.api_version
            out["kind"] = body.get("kind") or self.store.kind_name(target.group, target.plural)
        return out

    def _list(self, target: Target, query: Mapping[str, str]) -> Body:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = _parse_field_selector(query.get("fieldSelector", ""))
        bucket = self.store.bucket(target.group, target.plural)
        keys = [
            k
            for k in sorted(bucket)
            if (target.namespace is None or k[0] == target.namespace)
            and labels(bucket[k]["metadata"].get("labels") or {})
            and fields(bucket[k]["metadata"])
        ]
        metadata: dict[str, Any] = {"resourceVersion": self.store.resource_version}
        limit = int(query.get("limit") or 0)
        if limit > 0:  # a page, as the real server pages a LIST with limit / continue
            after, rv = _read_continue(query.get("continue", ""))
            if after is not None:
                keys = [k for k in keys if list(k) > after]
                metadata["resourceVersion"] = rv  # every page is read at the first one's
            if len(keys) > limit:
                if not query.get("labelSelector") and not query.get("fieldSelector"):
                    # the real server counts what is left only when nothing is filtered
                    metadata["remainingItemCount"] = len(keys) - limit
                keys = keys[:limit]
                metadata["continue"] = _write_continue(list(keys[-1]), metadata["resourceVersion"])
        return {
            "kind": f"{self.store.kind_name(target.group, target.plural)}List",
            "apiVersion": target.api_version,
            "metadata": metadata,
            "items": [self._out(target, bucket[k], in_list=True) for k in keys],
        }

    def _create(self, target: Target, payload: Any) -> Body:
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "the body of a POST must be an object")
        body = copy.deepcopy(payload)
        known = self.store.known_kind(target.group, target.plural)
        if known is not None and body.get("kind") not in (None, "", known):
            raise ApiError(
                400, "BadRequest", f"kind {body.get('kind')} does not match {target.resource}"
            )
        kind = body.get("kind") or self.store.kind_name(target.group, target.plural)
        body["apiVersion"], body["kind"] = target.api_version, kind
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            meta = body["metadata"] = {}
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"{kind}.{target.group} is invalid: metadata.name: Required value: name "
                    "or generateName is required",
                )
            meta["name"] = self.store.generate_name(meta["generateName"])
        namespace = target.namespace or ""
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        if namespace:
            meta["namespace"] = namespace
        if (_rv_int(meta.get("resourceVersion")) or 0) > 0:
            # etcd3 storage refuses it (a plain error: 500), unless it does not parse as a number
            raise ApiError(
                500, "InternalError", "resourceVersion should not be set on objects to be created"
            )
        if (target.group, target.plural) not in NO_STATUS_SUBRESOURCE:
            body.pop("status", None)  # the status subresource owns it
        self._against_crd(target, body, ("spec",))
        self._against_builtin(target, body, None)
        created = self.store.create(target.group, target.plural, body)
        return self._out(target, created)

    def _write(
        self, target: Target, key: tuple[str, str], current: Body, wanted: Any, *, put: bool
    ) -> Body:
        if not isinstance(wanted, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        _check_name(target, wanted)
        meta = wanted.get("metadata") if isinstance(wanted.get("metadata"), dict) else {}
        have = current["metadata"]["resourceVersion"]
        given = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if given not in (None, "") and str(given) != have:
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {_resource_name(target.group, target.plural)}"
                f' "{target.name}": the object has been modified; please apply your changes to '
                "the latest version and try again",
                {"name": target.name, "group": target.group, "kind": target.plural},
            )
        pair = (target.group, target.plural)
        if target.subresource == "scale":
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", "Scale.spec.replicas must be a non-negative int")
            updated = copy.deepcopy(current)
            updated.setdefault("spec", {})["replicas"] = replicas
        elif target.subresource == "status":
            updated = copy.deepcopy(current)
            if "status" in wanted and wanted["status"] is not None:
                updated["status"] = copy.deepcopy(wanted["status"])
            else:
                updated.pop("status", None)
        else:
            updated = copy.deepcopy(wanted)
            updated["apiVersion"], updated["kind"] = current.get("apiVersion"), current.get("kind")
            if pair not in NO_STATUS_SUBRESOURCE:
                if "status" in current:
                    updated["status"] = copy.deepcopy(current["status"])
                else:
                    updated.pop("status", None)
            new_meta = updated.get("metadata")
            if not isinstance(new_meta, dict):
                new_meta = updated["metadata"] = {}
            for k in _SERVER_METADATA:  # the server's, whatever the write said
                if k in current["metadata"]:
                    new_meta[k] = current["metadata"][k]
                else:
                    new_meta.pop(k, None)
            if current["metadata"].get("deletionTimestamp"):
                had = set(current["metadata"].get("finalizers") or ())
                added = [f for f in new_meta.get("finalizers") or () if f not in had]
                if added:
                    raise ApiError(
                        422,
                        "Invalid",
                        f'{_resource_name(target.group, target.plural)} "{target.name}" is '
                        "invalid: metadata.finalizers: Forbidden: no new finalizers can be added "
                        f"if the object is being deleted, found new finalizers {added}",
                    )
        updated["metadata"]["resourceVersion"] = have
        if target.subresource is None:
            self._against_crd(target, updated, ("spec",))
            self._against_builtin(target, updated, current)
        elif target.subresource == "status":
            self._against_crd(target, updated, ("status",))
        if updated == current:
            result = current
        elif updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
            "finalizers"
        ):
            # The last finalizer of an object marked for deletion is gone: the object goes, in
            # the same step; watchers see DELETED and the answer is the last stored version.
            result = copy.deepcopy(current)
            self.store._delete(target.group, target.plural, key)
        else:
            if target.subresource in (None, "scale") and _generation_part(
                target, updated
            ) != _generation_part(target, current):
                updated["metadata"]["generation"] = (
                    int(current["metadata"].get("generation", 1)) + 1
                )
            result = self.store.update(target.group, target.plural, key, updated)
        if target.subresource == "scale":
            return _scale_of(result)
        return self._out(target, result)

    def _against_crd(self, target: Target, body: Body, parts: tuple[str, ...]) -> None:
        """What the API server does with a custom resource's write against its CRD: drop the
        fields the schema does not declare (recorded in ``pruned``), then refuse a value of the
        wrong type or outside its enum with 422 (``tests/crd_schema.py``)."""
        schema = schema_for(target.group, target.plural) if self.crds else None
        if schema is None:
            return
        where = f"{target.plural}/{target.namespace}/{target.name or '?'}"
        self.pruned += [f"{where}: {p}" for p in prune_object(schema, body, parts)]
        errors = invalid_fields(target.plural, body, parts)
        if errors:
            raise ApiError(
                422,
                "Invalid",
                f"{self.store.kind_name(target.group, target.plural)}.{target.group} "
                f'"{target.name}" is invalid: ' + "; ".join(errors),
            )

    def _against_builtin(self, target: Target, body: Body, current: Body | None) -> None:
        """kube-apiserver's validation of a built-in kind's create (``current`` None) or update
        (``tests/builtin_validation.py``): 422 ``Invalid`` with the real server's message. A
        Service is first normalized as its REST storage does (an update that leaves out the
        allocated clusterIP keeps it), and a created one is given a clusterIP."""
        pair = (target.group, target.plural)
        if not self.builtins or pair not in BUILTIN_KINDS:
            return
        undecodable = decode_error(target.plural, body)
        if undecodable is not None:  # the typed decoding fails before validation (400)
            kind = BUILTIN_KINDS[pair][0]
            raise ApiError(
                400,
                "BadRequest",
                f'{kind} in version "{target.version}" cannot be handled as a {kind}: '
                f"{undecodable}",
            )
        if target.plural == "services" and target.group == "":
            normalize_service(body, current)
        errors = validate(target.group, target.plural, body, current)
        if current is None and target.plural == "services" and not errors:
            clash = self._cluster_ips.allocate(body)
            errors = [clash] if clash is not None else []
        if errors:
            name = str((body.get("metadata") or {}).get("name") or target.name or "")
            raise ApiError(
                422,
                "Invalid",
                invalid_message(BUILTIN_KINDS[pair][0], target.group, name, errors),
                {
                    "name": name,
                    "group": target.group,
                    "kind": BUILTIN_KINDS[pair][0],
                    "causes": [
                        {
                            "reason": _CAUSE_REASONS.get(e.type, "FieldValueInvalid"),
                            "message": e.body,
                            "field": e.path,
                        }
                        for e in errors
                    ],
                },
            )

    def _delete(self, target: Target, key: tuple[str, str], current: Body, payload: Any) -> Body:
        pre = (payload or {}).get("preconditions") if isinstance(payload, dict) else None
        if isinstance(pre, dict):
            for field_, have in (
                ("resourceVersion", current["metadata"]["resourceVersion"]),
                ("uid", current["metadata"]["uid"]),
            ):
                if pre.get(field_) not in (None, have):
                    raise ApiError(
                        409,
                        "Conflict",
                        f"Precondition failed: {field_} in precondition: {pre[field_]}, "
                        f"{field_} in object meta: {have}",
                    )
        if current["metadata"].get("finalizers"):
            # Finalizers pending: the object is only marked (once); it goes when a controller
            # removes the last finalizer (``_write``). The answer is the object, with 200.
            marked = current
            if not current["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(current)
                marked["metadata"]["deletionTimestamp"] = _now_rfc3339()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                marked["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
                marked = self.store.update(target.group, target.plural, key, marked)
            return self._out(target, marked)
        deleted = self.store._delete(target.group, target.plural, key)
        assert deleted is not None
        if (target.group, target.plural) == ("", "services"):
            self._cluster_ips.release(deleted)
        if target.group in BUILTIN_GROUPS:
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": target.name,
                    "group": target.group,
                    "kind": target.plural,
                    "uid": deleted["metadata"]["uid"],
                },
            }
        return self._out(target, deleted)

    async def _watch(
        self, request: web.Request, target: Target, query: Mapping[str, str]
    ) -> web.StreamResponse:
        watch = _Watch(
            target.group,
            target.version,
            target.plural,
            target.namespace,
            parse_label_selector(query.get("labelSelector", "")),
            _parse_field_selector(query.get("fieldSelector", "")),
            query.get("allowWatchBookmarks") in _TRUE,
        )
        backlog = self.store.subscribe(watch, query.get("resourceVersion"))
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        self._open_watches += 1
        try:
            await response.prepare(request)
            for message in backlog:
                if not await self._send(response, target, watch, message):
                    return response
            while True:
                wait = 0.25 if deadline is None else min(0.25, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    message = await asyncio.wait_for(watch.queue.get(), wait)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if message[0] == "end":
                    break
                if message[0] == "abort":
                    if request.transport is not None:
                        request.transport.abort()
                    break
                if not await self._send(response, target, watch, message):
                    break
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            self._open_watches -= 1
            self.store.unsubscribe(watch)
        return response

    async def _send(
        self,
        response: web.StreamResponse,
        target: Target,
        watch: _Watch,
        message: tuple[str, Any],
    ) -> bool:
        """Write one watch line; False when the stream must end after it."""
        kind, payload = message
        if kind == "raw":
            await response.write(payload)
            return True
        if kind == "error":
            event: Body = {"type": "ERROR", "object": payload}
        elif kind == "bookmark":
            if not watch.bookmarks:
                return True
            event = {
                "type": "BOOKMARK",
                "object": {
                    "apiVersion": target.api_version,
                    "kind": self.store.kind_name(target.group, target.plural),
                    "metadata": {"resourceVersion": self.store.resource_version},
                },
            }
        else:
            event = {"type": payload.type, "object": self._out(target, payload.body)}
        await response.write(json.dumps(event).encode() + b"\n")
        return kind != "error"

    async def close(self) -> None:
        """End open watches and held requests (before the server shuts down)."""
        self.store.signal_watches("end")
        self._release.set()
        for task in list(self._handlers):
            if task is not asyncio.current_task():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 2.0)
                except (TimeoutError, asyncio.CancelledError, Exception):
                    pass


#: field.ErrorType's reason per error text (a Status cause's ``reason``).
_CAUSE_REASONS = {
    "Invalid value": "FieldValueInvalid",
    "Required value": "FieldValueRequired",
    "Duplicate value": "FieldValueDuplicate",
    "Unsupported value": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
    "Not found": "FieldValueNotFound",
}


def _verb(method: str, target: Target | None, query: Mapping[str, str]) -> str:
    named = target is not None and target.name is not None
    if method == "GET":
        if named:
            return "get"
        return "watch" if query.get("watch") in _TRUE else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }.get(method, method.lower())


def _check_name(target: Target, body: Mapping[str, Any]) -> None:
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if name not in (None, target.name):
        raise ApiError(
            400,
            "BadRequest",
            f"the name of the object ({name}) does not match the name on the URL ({target.name})",
        )
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if namespace not in (None, target.namespace or ""):
        raise ApiError(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(target: Target) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_resource_name(target.group, target.plural)} "{target.name}" not found',
        {"name": target.name, "group": target.group, "kind": target.plural},
    )


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(
        status_body(error.code, error.reason, error.message, error.details),
        status=error.code,
        headers=error.headers,
    )


def _spec_part(body: Mapping[str, Any]) -> Body:
    return {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _generation_part(target: Target, body: Mapping[str, Any]) -> Body:
    """What moves ``generation``: the spec, and for an apps/v1 Deployment its annotations too
    (kube-apiserver's deployment strategy ``PrepareForUpdate`` bumps it for either)."""
    part = _spec_part(body)
    if (target.group, target.plural) == ("apps", "deployments"):
        part["metadata.annotations"] = (body.get("metadata") or {}).get("annotations") or {}
    return part


def _scale_of(body: Mapping[str, Any]) -> Body:
    meta = body["metadata"]
    selector = ((body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": (body.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (body.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }


def _apply_patch(current: Body, payload: Any, content_type: str, *, custom: bool = False) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    if custom and media == STRATEGIC_MERGE_PATCH:
        # a custom resource has no patch strategy to merge by: the API server refuses it (what
        # kubernetes-asyncio sends for a dict body unless told otherwise)
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
        )
    if media in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        return apply_merge_patch(current, payload)
    if media == JSON_PATCH:
        if not isinstance(payload, list):
            raise ApiError(
                400,
                "BadRequest",
                "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            )
        try:
            return json_patch(current, payload)
        except _PatchError as e:
            raise ApiError(422, "Invalid", f"the JSON patch could not be applied: {e}") from e
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH} (got {media or 'none'!r})",
    )


@asynccontextmanager
async def serve_kube_api(
    *,
    history_limit: int = 1000,
    token: str | None = None,
    crds: bool = True,
    builtins: bool = True,
) -> AsyncIterator[FakeKubeApi]:
    """Serve a fresh ``FakeKubeApi`` on 127.0.0.1 for the duration of the block.

    ``history_limit`` bounds the watch history (older resourceVersions answer 410 Gone);
    ``token``, when set, is required as ``Authorization: Bearer <token>`` (else 401);
    ``crds=False`` stores flagger.app objects unchecked (tests of the server's generic behaviour
    that use a toy Canary); ``builtins=False`` stores built-in kinds without kube-apiserver's
    validation (``tests/builtin_validation.py``), for tests that write toy Deployments or Services.
    """
    api = FakeKubeApi(history_limit=history_limit, token=token, crds=crds, builtins=builtins)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.url = f"http://{host}:{port}"
    try:
        yield api
    finally:
        await api.close()
        await runner.cleanup()


__all__ = [
    "FakeKubeApi",
    "KubeStore",
    "RecordedRequest",
    "Target",
    "json_patch",
    "parse_label_selector",
    "parse_path",
    "serve_kube_api",
    "status_body",
]
