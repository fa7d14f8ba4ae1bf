"""The Cluster seam: the few Kubernetes API operations the engine needs, on plain JSON bodies.

Implementations: ``InMemoryCluster`` (simulate and most tests) and, later, ``KubeCluster`` over
kubernetes-asyncio (the only module allowed to import it). Bodies are JSON-compatible dicts exactly
as the API server would return them; typed models exist only after ``config`` parses them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Body = dict[str, Any]
ReadBody = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


DEPLOYMENT = Kind("apps", "v1", "deployments", "Deployment")
DAEMONSET = Kind("apps", "v1", "daemonsets", "DaemonSet")
KNATIVE_SERVICE = Kind("serving.knative.dev", "v1", "services", "Service")
KNATIVE_REVISION = Kind("serving.knative.dev", "v1", "revisions", "Revision")
SERVICE = Kind("", "v1", "services", "Service")
CONFIGMAP = Kind("", "v1", "configmaps", "ConfigMap")
SECRET = Kind("", "v1", "secrets", "Secret")
EVENT = Kind("", "v1", "events", "Event")
HPA = Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
INGRESS = Kind("networking.k8s.io", "v1", "ingresses", "Ingress")
LEASE = Kind("coordination.k8s.io", "v1", "leases", "Lease")
CANARY = Kind("flagger.app", "v1beta1", "canaries", "Canary")
METRIC_TEMPLATE = Kind("flagger.app", "v1beta1", "metrictemplates", "MetricTemplate")
ALERT_PROVIDER = Kind("flagger.app", "v1beta1", "alertproviders", "AlertProvider")
VIRTUAL_SERVICE = Kind("networking.istio.io", "v1beta1", "virtualservices", "VirtualService")
DESTINATION_RULE = Kind("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule")
HTTP_ROUTE = Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
HTTP_ROUTE_V1BETA1 = Kind("gateway.networking.k8s.io", "v1beta1", "httproutes", "HTTPRoute")

KNOWN_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT,
    DAEMONSET,
    KNATIVE_SERVICE,
    KNATIVE_REVISION,
    SERVICE,
    CONFIGMAP,
    SECRET,
    EVENT,
    HPA,
    INGRESS,
    LEASE,
    CANARY,
    METRIC_TEMPLATE,
    ALERT_PROVIDER,
    VIRTUAL_SERVICE,
    DESTINATION_RULE,
    HTTP_ROUTE,
    HTTP_ROUTE_V1BETA1,
)


#: Kinds declared by router modules (``traffic.routers``), registered when they load.
_DECLARED_KINDS: list[Kind] = []


#: Kinds a controller tick reads: cached by default so that steady state sends no reads.
DEFAULT_CACHE_KINDS: tuple[Kind, ...] = (
    CANARY,
    METRIC_TEMPLATE,
    ALERT_PROVIDER,
    DEPLOYMENT,
    SERVICE,
    HPA,
)


def register_kind(kind: Kind) -> None:
    """Make ``kind_of`` know a custom resource a router module declares (idempotent)."""
    if kind not in KNOWN_KINDS and kind not in _DECLARED_KINDS:
        _DECLARED_KINDS.append(kind)


def kind_of(body: Mapping[str, Any]) -> Kind:
    """The Kind of a body from its apiVersion and kind; KeyError if unknown."""
    api, kind = body.get("apiVersion", ""), body.get("kind", "")
    for k in (*KNOWN_KINDS, *_DECLARED_KINDS):
        if k.api_version == api and k.kind == kind:
            return k
    raise KeyError(f"{api}/{kind}")


def labels_match(body: Mapping[str, Any], selector: Mapping[str, str] | None) -> bool:
    """Whether ``body``'s labels hold every ``key=value`` of an equality ``selector`` (what
    ``Cluster.list(labels=...)`` filters by; no selector matches everything)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: Kind
    namespace: str
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body.get("metadata") or {}
        kind = kind_of(body)
        # A cluster-scoped object has no namespace, whatever its body says (as the API server).
        namespace = str(meta.get("namespace", "default")) if kind.namespaced else ""
        return cls(kind, namespace, str(meta["name"]))

    def __str__(self) -> str:
        return f"{self.kind.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    body: ReadBody


class Cluster(Protocol):
    """Kubernetes API operations on JSON bodies.

    Errors: ``NotFound`` (object missing on patch), ``Conflict`` (stale resourceVersion, or
    create of an existing object), ``ClusterUnavailable`` (transport, 5xx, 429). All derive
    from ClusterError.
    """

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> ReadBody | None:
        """The object, or None when it does not exist. ``fresh``: as the API server holds it
        now, never from a cache (a write that conflicted needs the version that beat it).
        Read-only: changing it raises ``TypeError`` (``traffic.cluster._json``)."""
        ...

    async def list(
        self, kind: Kind, namespace: str | None, *, labels: Mapping[str, str] | None = None
    ) -> list[ReadBody]:
        """Objects of a kind in a namespace (None: all namespaces), filtered by equality labels;
        each read-only, as ``get``'s."""
        ...

    async def create(self, body: Body) -> ReadBody:
        """Create an object; Conflict if it exists.

        Returns the stored body (with resourceVersion). ``status`` is dropped for kinds with a
        status subresource; a body that carries a resourceVersion is refused
        (``ClusterUnavailable``: the API server answers 500)."""
        ...

    async def patch(
        self,
        ref: ObjectRef,
        patch: Body,
        *,
        status: bool = False,
        expect_version: str | None = None,
    ) -> ReadBody:
        """JSON merge patch (RFC 7386).

        ``status=True`` writes only the status subresource (and a non-status write ignores
        ``status``). ``expect_version`` and a ``metadata.resourceVersion`` in the patch are
        preconditions (``Conflict``). A write that changes nothing keeps the resourceVersion.
        Removing the last finalizer of an object marked for deletion deletes it (the answer is
        its last stored version). Renaming or moving an object is a ``ClusterError``."""
        ...

    async def delete(self, ref: ObjectRef) -> None:
        """Delete; a missing object is not an error. An object with finalizers is only marked
        (``metadata.deletionTimestamp``) until a patch removes the last one."""
        ...

    def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
        """Events for a kind from now on (current objects first as ADDED), each object's in
        resourceVersion order. The stream survives dropped connections without losing a change,
        and an expired resourceVersion (410 Gone): the implementation re-lists and sends the
        difference as ADDED / MODIFIED / DELETED, so the watcher converges on the cluster's
        state (intermediate versions may then be folded into one event)."""
        ...
