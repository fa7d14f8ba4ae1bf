"""``MeshSplitCluster``: the Cluster routers get when the mesh control plane is another cluster.

Flagger's ``-kubeconfig-service-mesh`` (``canary-engine run --kubeconfig-service-mesh``) names
the cluster whose API server holds the mesh's configuration (Istio primary-remote: the Canary, its
Deployments and Services live on a remote cluster, istiod and its VirtualServices on the primary).
Flagger's router factory (pkg/router/factory.go) hands that cluster's client (``meshClient``) to
the routers for the custom resources they write (Istio, App Mesh, SMI, Linkerd, OSM, Contour,
Gloo, Traefik, APISIX, Kuma, Gateway API) and keeps ``kubeClient`` for Services, Deployments and
Ingresses (nginx, skipper), and Knative's own client on the main cluster too.

Routers here take one ``Cluster``; rather than give each of them two, this one sends every request
by its Kind: ``is_mesh_kind`` to the mesh cluster, the rest to the main one. A router module does
not change, nor does a new one need to say anything to work with the flag.

A mesh cluster that is another API server cannot hold owner references to the Canary (the garbage
collector there would find no such owner and delete the object at once): Flagger then sets none
(``setOwnerRefs`` false when the two hosts differ). Here, with ``keep_owners`` false, the owner
references routers write go into an annotation instead, and come back as owner references on
every body read from the mesh cluster, so that a router still tells its own objects from a user's
exactly as on one cluster. As with Flagger, they are then not garbage-collected with the Canary.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from traffic.cluster._json import json_copy, read_only
from traffic.cluster._protocol import (
    Body,
    Cluster,
    Kind,
    ObjectRef,
    ReadBody,
    WatchEvent,
    kind_of,
)

#: API groups that stay on the main cluster: Kubernetes' own (core, apps, autoscaling, the
#: Ingress of nginx and skipper, Leases, Events), Flagger's (Canaries, MetricTemplates,
#: AlertProviders), Knative Serving (Flagger builds its client from the main kubeconfig) and KEDA
#: (ScaledObjects go with the target workload). Every other group is a custom resource Flagger
#: writes through ``meshClient``: a mesh or a gateway's routing configuration. The rule is on the
#: group, not a list of the kinds routers declare, so that a new router's custom resource goes to
#: the mesh cluster as in Flagger without naming it anywhere but in its own module.
MAIN_CLUSTER_GROUPS: Final = frozenset(
    {
        "",
        "apps",
        "autoscaling",
        "networking.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "flagger.app",
        "serving.knative.dev",
        "keda.sh",
    }
)

#: On an object of the mesh cluster: the owner references routers gave it (JSON), which that
#: cluster cannot hold (see the module docs).
OWNERS_ANNOTATION: Final = "canary-engine.io/owner-references"


def is_mesh_kind(kind: Kind) -> bool:
    """Whether objects of ``kind`` are read and written on the mesh cluster."""
    return kind.group not in MAIN_CLUSTER_GROUPS


class MeshSplitCluster:
    """The Cluster protocol over two clusters: ``is_mesh_kind`` kinds on ``mesh``, the rest on
    ``main``. ``keep_owners``: the mesh cluster is the main one's API server (owner references
    are written as they are); otherwise they travel in ``OWNERS_ANNOTATION``."""

    def __init__(self, main: Cluster, mesh: Cluster, *, keep_owners: bool = False) -> None:
        self.main = main
        self.mesh = mesh
        self._keep_owners = keep_owners

    def _for(self, kind: Kind) -> Cluster:
        return self.mesh if is_mesh_kind(kind) else self.main

    def _hides_owners(self, kind: Kind) -> bool:
        return not self._keep_owners and is_mesh_kind(kind)

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> ReadBody | None:
        body = await self._for(ref.kind).get(ref, fresh=fresh)
        return _owners_shown(body) if body is not None and self._hides_owners(ref.kind) else body

    async def list(
        self, kind: Kind, namespace: str | None, *, labels: Mapping[str, str] | None = None
    ) -> builtins.list[ReadBody]:
        found = await self._for(kind).list(kind, namespace, labels=labels)
        return [_owners_shown(b) for b in found] if self._hides_owners(kind) else found

    async def create(self, body: Body) -> ReadBody:
        kind = kind_of(body)
        if not self._hides_owners(kind):
            return await self._for(kind).create(body)
        return _answer_shown(await self.mesh.create(_owners_hidden(body)))

    async def patch(
        self,
        ref: ObjectRef,
        patch: Body,
        *,
        status: bool = False,
        expect_version: str | None = None,
    ) -> ReadBody:
        cluster = self._for(ref.kind)
        if not self._hides_owners(ref.kind):
            return await cluster.patch(ref, patch, status=status, expect_version=expect_version)
        stored = await cluster.patch(
            ref, _owners_hidden(patch), status=status, expect_version=expect_version
        )
        return _answer_shown(stored)

    async def delete(self, ref: ObjectRef) -> None:
        await self._for(ref.kind).delete(ref)

    async def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
        async for event in self._for(kind).watch(kind, namespace):
            if self._hides_owners(kind):
                event = WatchEvent(event.type, _owners_shown(event.body))
            yield event


def _owners_hidden(body: Mapping[str, Any]) -> Body:
    """``body`` (an object or a merge patch) with ``metadata.ownerReferences`` moved into
    ``OWNERS_ANNOTATION`` (a ``None`` removing them removes the annotation)."""
    meta = body.get("metadata")
    if not isinstance(meta, Mapping) or "ownerReferences" not in meta:
        return dict(body)
    out = json_copy(dict(body))
    meta = out["metadata"]
    owners = meta.pop("ownerReferences")
    annotations = meta.get("annotations") or {}
    value = None if owners is None else json.dumps(owners, separators=(",", ":"), sort_keys=True)
    meta["annotations"] = {**annotations, OWNERS_ANNOTATION: value}
    return out


def _owners_shown(body: ReadBody) -> ReadBody:
    """``body`` as read from the mesh cluster, with the owner references its annotation keeps
    back in ``metadata.ownerReferences`` (read-only, as read bodies are)."""
    shown = _with_owners(body)
    return body if shown is None else read_only(shown)


def _answer_shown(body: ReadBody) -> ReadBody:
    """What ``create`` or ``patch`` answered, owner references shown (a plain copy, as their
    answers are)."""
    shown = _with_owners(body)
    return body if shown is None else shown


def _with_owners(body: ReadBody) -> Body | None:
    """A plain copy of ``body`` with ``OWNERS_ANNOTATION`` turned back into owner references;
    None when it has none to turn."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if OWNERS_ANNOTATION not in annotations:
        return None
    try:
        owners = json.loads(annotations[OWNERS_ANNOTATION])
    except ValueError:
        return None  # not ours to read: left as the API server holds it
    if not isinstance(owners, builtins.list):
        return None
    out = json_copy(dict(body))
    shown = out["metadata"]
    del shown["annotations"][OWNERS_ANNOTATION]
    if not shown["annotations"]:
        del shown["annotations"]
    shown["ownerReferences"] = [*(shown.get("ownerReferences") or ()), *owners]
    return out
