"""InMemoryCluster: the Cluster protocol on plain JSON dicts, for ``simulate`` and tests.

It plays the role client-go's fake clientsets play in Flagger's tests, but keeps the API
server's contract honest where the engine depends on it:

* nothing a caller holds aliases the store: what comes in is copied; what ``get``, ``list`` and
  watches hand out is read-only or a copy (``traffic.cluster._json``); and a stored version is
  never changed in place, so a new one may share what a write left alone with the one before;
* one global ``resourceVersion`` counter (a string, as on the wire), ``metadata.uid``,
  ``creationTimestamp`` and ``generation`` (bumped only when a non-status write changes
  something outside ``metadata``/``status``);
* JSON merge patch (RFC 7386); ``expect_version`` and a ``metadata.resourceVersion`` inside the
  patch body are both preconditions that raise ``Conflict``; a write that changes nothing is a
  no-op (no new resourceVersion, no event), as on the API server;
* the status subresource: ``status=True`` changes only ``.status``, every other write ignores it;
* finalizers: ``delete`` of an object with finalizers only marks it (``deletionTimestamp``, a
  new generation); the patch that removes its last finalizer deletes it; a create carrying a
  ``resourceVersion`` and a patch renaming or moving an object are refused, as on the server;
* ``tests/traffic/test_cluster_contract.py`` runs the same tests against this class and against
  ``KubeCluster`` talking to ``tests/kubeapi.py``, so the emulations cannot drift apart;
* ``watch()`` hands each watcher its own ``asyncio.Queue``: ADDED for the current objects first,
  then ADDED / MODIFIED / DELETED as they happen.

Nothing here ever awaits anything except a watcher waiting for its next event, so under the
engine's VirtualClock no actor can block on the cluster.

A tiny simulated Deployment controller stands in for kube-controller-manager: whenever a
Deployment's spec is written its status becomes ready at once (its own write, with its own
resourceVersion and MODIFIED event, as the real controller's would be), unless a test holds the
readiness of that object with ``hold_readiness``.

Test and simulate helpers live off the protocol: ``seed``, ``peek``, ``hold_readiness``,
``release``, ``events_for`` and ``calls`` (a per-verb request counter, so benchmarks can assert
that a steady-state tick makes no writes).

Imports only the Cluster seam's own modules; time comes in through the ``now`` argument.
"""

from __future__ import annotations

import builtins
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from traffic.cluster._errors import ClusterError, ClusterUnavailable, Conflict, NotFound
from traffic.cluster._json import json_copy, read_only
from traffic.cluster._protocol import (
    CONFIGMAP,
    DAEMONSET,
    DEPLOYMENT,
    EVENT,
    KNATIVE_REVISION,
    KNATIVE_SERVICE,
    LEASE,
    SECRET,
    Body,
    Kind,
    ObjectRef,
    ReadBody,
    WatchEvent,
    kind_of,
    labels_match,
)

if TYPE_CHECKING:
    import asyncio

#: Kinds the API server serves without a status subresource: ``.status`` is plain data there.
_NO_STATUS_SUBRESOURCE = frozenset({CONFIGMAP, SECRET, EVENT, LEASE})

#: Metadata the server owns; a client's patch never changes these.
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

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet


def _fixed_epoch() -> datetime:
    return _EPOCH


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp form: UTC, whole seconds, ``Z`` suffix."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_T = TypeVar("_T")


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes a key, anything else replaces."""
    # The result shares nothing with ``target`` (a copy is merged) nor with ``patch`` (merging
    # copies what it takes from it).
    return _merged(json_copy(target), patch)


def _merged(target: Any, patch: Any) -> Any:
    """``apply_merge_patch`` for the stored versions of ``InMemoryCluster``: the result shares
    the subtrees the patch leaves alone with ``target`` (only the levels on a patched path are
    new), which is safe because a stored version is never changed in place: each version gets a
    ``metadata`` of its own (the one part ``_commit`` and ``_remove`` write to), and everything
    else is replaced, not edited. Copying the whole object on every status write was most of
    what a tick's writes cost."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


def _resource(kind: Kind) -> str:
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def _spec_part(body: Mapping[str, Any]) -> dict[str, Any]:
    # What ``generation`` tracks: everything but the envelope, metadata and status.
    return {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _generation_part(kind: Kind, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a change of moves ``generation``: the spec, and for a Deployment its annotations
    too (the API server's deployment strategy, ``PrepareForUpdate``, bumps it for either)."""
    part = _spec_part(body)
    if kind == DEPLOYMENT:
        part["metadata.annotations"] = (body.get("metadata") or {}).get("annotations") or {}
    return part


def _rv_is_set(value: Any) -> bool:
    # The API server refuses a create whose resourceVersion parses as a non-zero number.
    try:
        return int(str(value)) > 0
    except ValueError:
        return False


def _check_same_object(ref: ObjectRef, meta_patch: Mapping[str, Any]) -> None:
    """A patch cannot rename or move an object (the API server answers 400 BadRequest)."""
    name, namespace = meta_patch.get("name"), meta_patch.get("namespace")
    if name is not None and name != ref.name:
        raise ClusterError(
            f"the name of the object ({name}) does not match the name on the URL ({ref.name})"
        )
    if namespace is not None and namespace != ref.namespace:
        raise ClusterError(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def _new_finalizers_while_deleting(
    current: Mapping[str, Any], updated: Mapping[str, Any]
) -> list[str]:
    """Finalizers a write adds to an object already marked for deletion (the server refuses)."""
    if not current["metadata"].get("deletionTimestamp"):
        return []
    had = set(current["metadata"].get("finalizers") or ())
    return [str(f) for f in updated["metadata"].get("finalizers") or () if f not in had]


@dataclass(frozen=True, slots=True)
class _Watcher:
    kind: Kind
    namespace: str | None
    queue: asyncio.Queue[WatchEvent]

    def wants(self, ref: ObjectRef) -> bool:
        return ref.kind == self.kind and (self.namespace is None or ref.namespace == self.namespace)


class InMemoryCluster:
    """A dict store with the API server's versioning, patch and watch semantics.

    ``now`` supplies timestamps (``creationTimestamp``, Deployment condition times); it defaults
    to a fixed instant so runs are reproducible. ``calls`` counts requests per verb: ``get``,
    ``list``, ``create``, ``patch``, ``patch_status``, ``delete``, ``watch`` (helpers such as
    ``seed`` and ``peek`` are not counted).
    """

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or _fixed_epoch
        self._objects: dict[ObjectRef, Body] = {}
        #: The read-only copy of each stored object that ``get`` and ``list`` hand out, made on
        #: the first read after a write (``traffic.cluster._json``).
        self._reads: dict[ObjectRef, Body] = {}
        self._order: dict[ObjectRef, int] = {}
        self._version = 0
        self._serial = 0
        self._holds: dict[ObjectRef, Body] = {}
        #: Knative Service -> (its last revision's template, that revision's number).
        self._knative_revisions: dict[ObjectRef, tuple[Body, int]] = {}
        self._watchers: builtins.list[_Watcher] = []
        self.calls: Counter[str] = Counter()

    # ------------------------------------------------------------------ the Cluster protocol

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> ReadBody | None:
        self.calls["get"] += 1
        return self._read(ref)

    async def list(
        self, kind: Kind, namespace: str | None, *, labels: Mapping[str, str] | None = None
    ) -> builtins.list[ReadBody]:
        self.calls["list"] += 1
        refs = sorted(
            (
                r
                for r in self._objects
                if r.kind == kind and (namespace is None or r.namespace == namespace)
            ),
            key=lambda r: (r.namespace, r.name),
        )
        return [self._frozen(r) for r in refs if labels_match(self._objects[r], labels)]

    async def create(self, body: Body) -> ReadBody:
        self.calls["create"] += 1
        if _rv_is_set((body.get("metadata") or {}).get("resourceVersion")):
            # The API server answers 500 InternalError, which KubeCluster raises as this.
            raise ClusterUnavailable("resourceVersion should not be set on objects to be created")
        stored = self._prepare_new(body)
        ref = self._ref_of(stored)
        if ref in self._objects:
            raise Conflict(f'{_resource(ref.kind)} "{ref.name}" already exists')
        if ref.kind not in _NO_STATUS_SUBRESOURCE:
            # NB: the API server drops status on create for kinds with a status subresource.
            stored.pop("status", None)
        self._commit(ref, stored, "ADDED")
        created = json_copy(stored)
        if ref.kind in _SIMULATED:
            self._run_deployment_controller(ref)
        if ref.kind == KNATIVE_SERVICE:
            self._run_knative_controller(ref)
        return created

    async def patch(
        self,
        ref: ObjectRef,
        patch: Body,
        *,
        status: bool = False,
        expect_version: str | None = None,
    ) -> ReadBody:
        self.calls["patch_status" if status else "patch"] += 1
        current = self._objects.get(ref)
        if current is None:
            raise NotFound(f'{_resource(ref.kind)} "{ref.name}" not found in {ref.namespace}')
        if status and ref.kind in _NO_STATUS_SUBRESOURCE:
            raise NotFound(f"{_resource(ref.kind)} have no status subresource")
        patch = dict(patch)  # only its top level and metadata lose keys here; merging copies
        meta_patch = patch.get("metadata")
        body_version = None
        if isinstance(meta_patch, dict):
            meta_patch = patch["metadata"] = dict(meta_patch)
            body_version = meta_patch.pop("resourceVersion", None)
            _check_same_object(ref, meta_patch)
        have = current["metadata"]["resourceVersion"]
        for wanted in (expect_version, body_version):
            if wanted is not None and str(wanted) != have:
                raise Conflict(
                    f'Operation cannot be fulfilled on {_resource(ref.kind)} "{ref.name}": the '
                    "object has been modified; please apply your changes to the latest version "
                    "and try again"
                )
        if status:
            updated = {**current, "metadata": dict(current["metadata"])}
            if "status" in patch:
                merged = _merged(current.get("status"), patch["status"])
                if merged is None:
                    updated.pop("status", None)
                else:
                    updated["status"] = merged
        else:
            if ref.kind not in _NO_STATUS_SUBRESOURCE:
                patch.pop("status", None)
            patch.pop("apiVersion", None)
            patch.pop("kind", None)
            updated = _merged(current, patch)
            # Whatever the patch said, the server-owned metadata stays the server's.
            meta = updated.get("metadata")
            meta = updated["metadata"] = dict(meta) if isinstance(meta, dict) else {}
            for key in _SERVER_METADATA:
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
                else:
                    meta.pop(key, None)
            added = _new_finalizers_while_deleting(current, updated)
            if added:
                raise ClusterError(
                    f'{_resource(ref.kind)} "{ref.name}" is invalid: metadata.finalizers: '
                    "Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {added}"
                )
        if updated == current:
            return json_copy(current)
        if not status and _generation_part(ref.kind, updated) != _generation_part(
            ref.kind, current
        ):
            updated["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        meta = updated["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone from an object being deleted: the API server deletes it
            # and answers with the last stored version.
            last = json_copy(current)
            await self._remove(ref)
            return last
        self._commit(ref, updated, "MODIFIED")
        result = json_copy(updated)
        if not status and ref.kind in _SIMULATED:
            self._run_deployment_controller(ref)
        if not status and ref.kind == KNATIVE_SERVICE:
            self._run_knative_controller(ref)
        return result

    async def delete(self, ref: ObjectRef) -> None:
        self.calls["delete"] += 1
        current = self._objects.get(ref)
        if current is not None and current["metadata"].get("finalizers"):
            # As the API server: an object with finalizers is only marked for deletion; it goes
            # once a controller has removed the last finalizer.
            if not current["metadata"].get("deletionTimestamp"):
                marked = json_copy(current)
                marked["metadata"]["deletionTimestamp"] = rfc3339(self._now())
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                # As the API server: marking for deletion is a new generation.
                marked["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
                self._commit(ref, marked, "MODIFIED")
            return
        await self._remove(ref)

    async def _remove(self, ref: ObjectRef) -> None:
        body = self._objects.pop(ref, None)
        self._reads.pop(ref, None)
        self._order.pop(ref, None)
        if body is None:
            return
        self._version += 1
        body["metadata"]["resourceVersion"] = str(self._version)
        self._notify(ref, "DELETED", body)

    async def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
        import asyncio  # here, not at the top: `validate` reaches this module, never a watch

        self.calls["watch"] += 1
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        watcher = _Watcher(kind, namespace, queue)
        # Snapshot and registration happen in the same synchronous step, so no event can fall
        # between the initial ADDED list and the live stream.
        current = [
            WatchEvent("ADDED", json_copy(self._objects[r]))
            for r in sorted(self._objects, key=lambda r: self._order[r])
            if watcher.wants(r)
        ]
        self._watchers.append(watcher)
        try:
            for event in current:
                yield event
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(watcher)

    # ------------------------------------------------------------------ helpers off the protocol

    def seed(self, *bodies: Body) -> None:
        """Store objects as they would exist in a cluster (create or replace, status kept).

        A seeded Deployment without a status gets one from the simulated controller (ready,
        unless held). Not counted in ``calls``.
        """
        for body in bodies:
            stored = self._prepare_new(body)
            ref = self._ref_of(stored)
            if "generation" in (body.get("metadata") or {}):
                stored["metadata"]["generation"] = body["metadata"]["generation"]
            existed = ref in self._objects
            self._commit(ref, stored, "MODIFIED" if existed else "ADDED")
            if ref.kind in _SIMULATED and "status" not in body:
                self._run_deployment_controller(ref)
            if ref.kind == KNATIVE_SERVICE and "status" not in body:
                self._run_knative_controller(ref)

    def peek(self, ref: ObjectRef) -> Body | None:
        """A copy of the stored object (or None) without counting a request."""
        found = self._objects.get(ref)
        return json_copy(found) if found is not None else None

    def hold_readiness(self, ref: ObjectRef, status_body: Body) -> None:
        """Pin a Deployment's status to ``status_body`` (e.g. ProgressDeadlineExceeded).

        The simulated controller leaves a held Deployment alone until ``release``. A hold may be
        placed before the Deployment exists; it applies when the Deployment is created.
        """
        if ref.kind != DEPLOYMENT:
            raise ValueError(f"readiness can only be held for Deployments, not {ref.kind.kind}")
        self._holds[ref] = json_copy(status_body)
        if ref in self._objects:
            self._run_deployment_controller(ref)

    def release(self, ref: ObjectRef) -> None:
        """Drop a hold; the Deployment becomes ready at once (if it exists)."""
        self._holds.pop(ref, None)
        if ref in self._objects:
            self._run_deployment_controller(ref)

    def events_for(self, namespace: str, name: str) -> builtins.list[Body]:
        """Event bodies whose involvedObject is ``namespace/name``, oldest first."""
        found = []
        for ref in sorted(self._objects, key=lambda r: self._order[r]):
            if ref.kind != EVENT:
                continue
            body = self._objects[ref]
            involved = body.get("involvedObject") or {}
            if involved.get("name") == name and involved.get("namespace", ref.namespace) == (
                namespace
            ):
                found.append(json_copy(body))
        return found

    # ------------------------------------------------------------------ internals

    def _ref_of(self, body: Mapping[str, Any]) -> ObjectRef:
        if not (body.get("metadata") or {}).get("name"):
            raise ValueError("metadata.name (or metadata.generateName) is required")
        try:
            return ObjectRef.of(body)
        except KeyError as exc:
            raise ValueError(f"unknown kind {exc.args[0]}; see KNOWN_KINDS") from None

    def _prepare_new(self, body: Body) -> Body:
        stored = json_copy(body)
        meta = stored.get("metadata")
        if not isinstance(meta, dict):
            meta = stored["metadata"] = {}
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{self._suffix()}"
        try:
            namespaced = kind_of(stored).namespaced
        except KeyError:
            namespaced = True  # an unknown kind: _ref_of names it
        if namespaced:
            meta.setdefault("namespace", "default")
        else:  # as the API server: a cluster-scoped object has no namespace
            meta["namespace"] = ""
        self._serial += 1
        meta["uid"] = str(uuid.UUID(int=self._serial))
        meta["creationTimestamp"] = rfc3339(self._now())
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        return stored

    def _suffix(self) -> str:
        # Deterministic stand-in for the server's random 5-character generateName suffix.
        n, out = self._serial + 1, ""
        for _ in range(5):
            n, digit = divmod(n * 7919 + 13, len(_NAME_ALPHABET))
            out += _NAME_ALPHABET[digit]
        return out

    def _read(self, ref: ObjectRef) -> Body | None:
        return self._frozen(ref) if ref in self._objects else None

    def _frozen(self, ref: ObjectRef) -> Body:
        """The read-only copy of a stored object, made at its first read after a write."""
        found = self._reads.get(ref)
        if found is None:
            found = self._reads[ref] = read_only(self._objects[ref])
        return found

    def _commit(
        self, ref: ObjectRef, body: Body, event: Literal["ADDED", "MODIFIED", "DELETED"]
    ) -> None:
        self._reads.pop(ref, None)
        self._version += 1
        body["metadata"]["resourceVersion"] = str(self._version)
        if ref not in self._objects:
            self._order[ref] = self._version
        self._objects[ref] = body
        self._notify(ref, event, body)

    def _notify(
        self, ref: ObjectRef, event: Literal["ADDED", "MODIFIED", "DELETED"], body: Body
    ) -> None:
        for watcher in self._watchers:
            if watcher.wants(ref):
                watcher.queue.put_nowait(WatchEvent(event, json_copy(body)))

    def _run_knative_controller(self, ref: ObjectRef) -> None:
        """Knative Serving, as simulate needs it: each new ``spec.template`` is a new, at once
        ready Revision ``<service>-0000N``; the status names the latest and mirrors the traffic."""
        body = self._objects[ref]
        spec = body.get("spec") or {}
        template = json_copy(spec.get("template") or {})
        last = self._knative_revisions.get(ref)
        seeded = str((body.get("status") or {}).get("latestCreatedRevisionName") or "")
        if last is None and seeded.rpartition("-")[2].isdigit():
            # A seeded Service already has its revision: only a new template makes another.
            last = self._knative_revisions[ref] = (template, int(seeded.rpartition("-")[2]))
        number = last[1] if last is not None else 0
        if last is None or last[0] != template:
            number += 1
            self._knative_revisions[ref] = (template, number)
            revision = ObjectRef(KNATIVE_REVISION, ref.namespace, f"{ref.name}-{number:05d}")
            self._commit(
                revision,
                {
                    "apiVersion": KNATIVE_REVISION.api_version,
                    "kind": KNATIVE_REVISION.kind,
                    "metadata": {
                        "name": revision.name,
                        "namespace": ref.namespace,
                        "labels": {"serving.knative.dev/service": ref.name},
                    },
                    "spec": json_copy(template.get("spec") or {}),
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                },
                "ADDED",
            )
        name = f"{ref.name}-{number:05d}"
        desired = {
            "observedGeneration": body["metadata"].get("generation", 1),
            "latestCreatedRevisionName": name,
            "latestReadyRevisionName": name,
            "traffic": json_copy(spec.get("traffic") or [{"latestRevision": True, "percent": 100}]),
        }
        if body.get("status") == desired:
            return
        updated = json_copy(body)
        updated["status"] = desired
        self._commit(ref, updated, "MODIFIED")

    def _run_deployment_controller(self, ref: ObjectRef) -> None:
        body = self._objects[ref]
        held = self._holds.get(ref)
        desired = (
            json_copy(held)
            if held is not None
            else _ready_status(body, body.get("status") or {}, rfc3339(self._now()))
            if ref.kind == DEPLOYMENT
            else _daemonset_status(body)
        )
        if desired == body.get("status"):
            return
        updated = json_copy(body)
        updated["status"] = desired
        self._commit(ref, updated, "MODIFIED")


#: Kinds whose controller the in-memory cluster simulates (their rollouts complete at once).
_SIMULATED = (DEPLOYMENT, DAEMONSET)
#: Nodes the simulated DaemonSet controller schedules on (all of them, unless a nodeSelector
#: matches none: Flagger scales a DaemonSet to zero with ``flagger.app/scale-to-zero``).
_SIMULATED_NODES = 3


def _daemonset_status(body: Mapping[str, Any]) -> Body:
    """What the DaemonSet controller reports once a rollout has fully completed."""
    pod_spec = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
    nodes = (
        0
        if "flagger.app/scale-to-zero" in (pod_spec.get("nodeSelector") or {})
        else _SIMULATED_NODES
    )
    return {
        "observedGeneration": body["metadata"].get("generation", 1),
        "desiredNumberScheduled": nodes,
        "currentNumberScheduled": nodes,
        "updatedNumberScheduled": nodes,
        "numberReady": nodes,
        "numberAvailable": nodes,
        "numberMisscheduled": 0,
    }


def _ready_status(body: Mapping[str, Any], previous: Mapping[str, Any], stamp: str) -> Body:
    """What the Deployment controller reports once a rollout has fully completed."""
    spec = body.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    name = body["metadata"]["name"]
    return {
        "observedGeneration": body["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            _condition(
                previous,
                "Available",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp,
            ),
            _condition(
                previous,
                "Progressing",
                "NewReplicaSetAvailable",
                f'Deployment "{name}" has successfully progressed.',
                stamp,
            ),
        ],
    }


def _condition(
    previous: Mapping[str, Any], kind: str, reason: str, message: str, stamp: str
) -> Body:
    # Keep the old timestamps when nothing changed, so a no-op spec write stays a no-op.
    for old in previous.get("conditions") or ():
        if (
            old.get("type") == kind
            and old.get("status") == "True"
            and old.get("reason") == reason
            and old.get("message") == message
        ):
            return dict(old)
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }
