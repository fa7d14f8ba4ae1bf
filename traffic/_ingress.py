"""The ``<ingress>-canary`` copy of the user's Ingress (routers ``nginx``, ``skipper``).

Both read ``spec.ingressRef`` (never changed) and write ``<ingress>-canary`` next to it; they
differ in how the copy's spec and annotations route traffic, which each passes in.

Imports only ``config``, the Cluster seam and the shared helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from config import Canary
from traffic._errors import RoutingError
from traffic._objects import NO_CHANGE, diff_or_empty, merge_diff, owned_metadata
from traffic.cluster import INGRESS, Body, Cluster, ObjectRef, ReadBody


def ingress_refs(canary: Canary, provider: str) -> tuple[ObjectRef, ObjectRef]:
    """The user's Ingress (``spec.ingressRef``) and its ``<ingress>-canary`` copy."""
    ingress = canary.spec.ingress_ref
    if ingress is None:
        raise RoutingError(f"canary {canary.dotted}: spec.ingressRef is required for {provider}")
    ns = canary.metadata.namespace
    return ObjectRef(INGRESS, ns, ingress.name), ObjectRef(INGRESS, ns, f"{ingress.name}-canary")


#: Why the canary Ingress may be missing, for ``require_ingress``.
MADE_BY_RECONCILE = "; reconcile creates it"


async def require_ingress(cluster: Cluster, ref: ObjectRef, *, why_missing: str = "") -> ReadBody:
    """The Ingress at ``ref``; a RoutingError naming it (and ``why_missing``) when it does not
    exist."""
    found = await cluster.get(ref)
    if found is None:
        raise RoutingError(f"ingress {ref.name}.{ref.namespace} not found{why_missing}")
    return found


async def write_canary_ingress(
    cluster: Cluster,
    canary: Canary,
    ref: ObjectRef,
    *,
    user: Mapping[str, Any],
    spec: Body,
    annotations: Callable[[Mapping[str, str] | None], dict[str, str]],
    annotations_on_change: Callable[[Mapping[str, str], Mapping[str, str]], dict[str, str]]
    | None = None,
) -> None:
    """Create the canary Ingress ``ref`` with ``spec`` (labels from ``user``, annotations from
    ``annotations(user's annotations)``), or correct only its spec when it exists: reconciling
    never moves traffic, the annotations are ``set_routes``' business. ``annotations_on_change``
    (user's annotations, the canary Ingress' own): what they become when the spec changed too
    (Flagger's skipper router copies the user's again then)."""
    existing = await cluster.get(ref)
    if existing is None:
        meta = user.get("metadata") or {}
        await cluster.create(
            {
                "apiVersion": INGRESS.api_version,
                "kind": INGRESS.kind,
                "metadata": owned_metadata(
                    canary,
                    ref.name,
                    ref.namespace,
                    labels=meta.get("labels"),
                    annotations=annotations(meta.get("annotations")),
                ),
                "spec": spec,
            }
        )
        return
    patch = merge_diff(existing.get("spec") or {}, spec)
    if patch is NO_CHANGE:
        return
    body: Body = {"spec": patch}
    if annotations_on_change is not None:
        have = dict((existing.get("metadata") or {}).get("annotations") or {})
        user_annotations = (user.get("metadata") or {}).get("annotations") or {}
        changed = diff_or_empty(have, annotations_on_change(user_annotations, have))
        if changed:
            body["metadata"] = {"annotations": changed}
    await cluster.patch(ref, body)


async def patch_annotations(
    cluster: Cluster,
    ref: ObjectRef,
    existing: Mapping[str, Any],
    wanted: Callable[[dict[str, str]], Mapping[str, str]],
) -> None:
    """Make the annotations of ``existing`` (the object at ``ref``) ``wanted(its annotations)``;
    routing lives in the canary Ingress' annotations, and an unchanged route writes nothing."""
    have: dict[str, str] = dict((existing.get("metadata") or {}).get("annotations") or {})
    patch = diff_or_empty(have, wanted(have))
    if patch:
        await cluster.patch(ref, {"metadata": {"annotations": patch}})
