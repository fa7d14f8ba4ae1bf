"""Small helpers on Kubernetes object bodies shared by the workload and the routers.

Owner references to the Canary, Flagger's metadata filters, the selector-label lookup on the
target Deployment, and ``merge_diff`` (the RFC 7386 merge patch that turns one body into
another), which is how every writer here stays a no-op when nothing needs to change: read,
diff, and write only a non-empty patch. The routers' create-or-patch of their routing objects
is built from ``owned_object``, ``patch_spec``, ``metadata_patch`` and ``patch_changes``.

Imports only ``config`` and the Cluster seam.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import API_VERSION, Canary, ServiceSpec
from traffic._errors import RoutingError, WorkloadError
from traffic.cluster import DAEMONSET, DEPLOYMENT, Body, Cluster, Kind, ObjectRef, ReadBody

#: Candidate selector label keys, in Flagger's order (``-selector-labels``).
DEFAULT_SELECTOR_LABELS: Final = ("app", "name", "app.kubernetes.io/name")

#: Pod label the kubernetes router adds so one apex selector can match primary and canary pods.
APEX_LABEL: Final = "canary-engine.io/apex"

#: Annotation on the target Deployment: its replica count before the kubernetes router shrank it
#: for a traffic split, so promotion copies the intended capacity rather than the split's.
DECLARED_REPLICAS_ANNOTATION: Final = "canary-engine.io/declared-replicas"

#: Key prefix of the metadata canary-engine's routers own on objects they share with users.
OWN_PREFIX: Final = "canary-engine.io/"

KUBECTL_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
FLUX_MARKER: Final = "toolkit.fluxcd.io"


class _NoChange:
    __slots__ = ()


NO_CHANGE: Final = _NoChange()


def merge_diff(current: Any, desired: Any) -> Any:
    """The RFC 7386 merge patch that turns ``current`` into ``desired``, or ``NO_CHANGE``.

    Keys missing from ``desired`` become ``null`` (delete); lists are replaced whole, as merge
    patch does. ``desired`` must not contain ``None`` values (they would read as deletes).
    """
    if isinstance(current, dict) and isinstance(desired, dict):
        patch: dict[str, Any] = {}
        for key in current:
            if key not in desired:
                patch[key] = None
        for key, value in desired.items():
            if key not in current:
                patch[key] = copy.deepcopy(value)
                continue
            sub = merge_diff(current[key], value)
            if sub is not NO_CHANGE:
                patch[key] = sub
        return patch if patch else NO_CHANGE
    if current == desired:
        return NO_CHANGE
    return copy.deepcopy(desired)


def diff_or_empty(current: Any, desired: Any) -> dict[str, Any]:
    """``merge_diff`` of two mappings as a dict (empty when nothing changes)."""
    patch = merge_diff(dict(current or {}), dict(desired or {}))
    return {} if patch is NO_CHANGE else dict(patch)


def replace_map(current: Mapping[str, str] | None, desired: Mapping[str, str]) -> dict[str, Any]:
    """A merge patch that makes a string map exactly ``desired`` (e.g. a Service selector)."""
    return diff_or_empty(current, desired)


def without_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values, as Go's ``omitempty`` does when marshalling."""
    return {k: v for k, v in mapping.items() if v is not None}


def canary_uid(canary: Canary) -> str | None:
    extra = canary.metadata.model_extra or {}
    uid = extra.get("uid")
    return str(uid) if uid else None


def owned_metadata(
    canary: Canary,
    name: str,
    namespace: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Body:
    """Metadata of an object canary-engine generates for a Canary (owned by it, so garbage
    collected with it); empty label and annotation maps are left out."""
    return without_none(
        {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels) if labels else None,
            "annotations": dict(annotations) if annotations else None,
            "ownerReferences": [owner_reference(canary)],
        }
    )


def owned_object(
    canary: Canary,
    ref: ObjectRef,
    spec: Body,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Body:
    """The body of the object ``ref`` with ``spec``, owned by the Canary (``owned_metadata``)."""
    return {
        "apiVersion": ref.kind.api_version,
        "kind": ref.kind.kind,
        "metadata": owned_metadata(
            canary, ref.name, ref.namespace, labels=labels, annotations=annotations
        ),
        "spec": spec,
    }


def metadata_patch(
    existing: Mapping[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str]
) -> Body:
    """The metadata merge patch that sets the labels and annotations whose value ``existing``
    lacks (others' keys are kept, none deleted); empty when it has them all."""
    meta = existing.get("metadata") or {}
    have_labels = meta.get("labels") or {}
    have_annotations = meta.get("annotations") or {}
    return without_none(
        {
            "labels": {k: v for k, v in labels.items() if have_labels.get(k) != v} or None,
            "annotations": {k: v for k, v in annotations.items() if have_annotations.get(k) != v}
            or None,
        }
    )


def apex_metadata_patch(
    existing: Mapping[str, Any],
    canary: Canary,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    keep_annotations: Iterable[str] = (),
    merge_annotations: bool = False,
) -> Body:
    """The metadata merge patch that makes a routing object's labels and annotations the
    Canary's (its ``service.apex`` ones and the router's own), as Flagger's routers replace them
    on every reconcile: a label removed from the Canary goes from the object too.

    ``keep_annotations``: keys kept as they are (kubectl's last-applied configuration, the
    original configuration a router stored). ``merge_annotations``: annotations are only added,
    others' kept, as Flagger's Gateway API router does ("preserve the existing annotations added
    by other controllers"). An object the Canary does not own (a user's own, taken over) only
    gets the Canary's keys added: its other labels and annotations are the user's."""
    if not is_owned_by(existing, canary):
        return metadata_patch(existing, labels, annotations)
    meta = existing.get("metadata") or {}
    have_labels = meta.get("labels") or {}
    have_annotations = meta.get("annotations") or {}
    if merge_annotations:
        wanted_annotations = {**have_annotations, **annotations}
    else:
        kept = {k: have_annotations[k] for k in keep_annotations if k in have_annotations}
        wanted_annotations = {**kept, **annotations}
    return without_none(
        {
            "labels": diff_or_empty(have_labels, labels) or None,
            "annotations": diff_or_empty(have_annotations, wanted_annotations) or None,
        }
    )


async def patch_changes(cluster: Cluster, ref: ObjectRef, spec_patch: Any, metadata: Body) -> None:
    """One merge patch of ``spec_patch`` (a ``merge_diff``) and ``metadata``; none at all when
    neither changes anything."""
    patch: Body = {}
    if spec_patch is not NO_CHANGE:
        patch["spec"] = spec_patch
    if metadata:
        patch["metadata"] = metadata
    if patch:
        await cluster.patch(ref, patch)


async def patch_spec(
    cluster: Cluster, ref: ObjectRef, existing: Mapping[str, Any], spec: Body
) -> None:
    """Patch ``existing``'s spec to ``spec``; nothing is sent when it already is."""
    await patch_changes(cluster, ref, merge_diff(existing.get("spec") or {}, spec), {})


def owner_reference(canary: Canary) -> Body:
    """A controller owner reference to the Canary, so generated objects are garbage-collected."""
    ref: Body = {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.metadata.name,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    uid = canary_uid(canary)
    if uid:
        ref["uid"] = uid
    return ref


def controller_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def is_owned_by(body: Mapping[str, Any], canary: Canary) -> bool:
    """True when the Canary is the object's controller (Flagger's ``isOwnedByCanary``)."""
    owner = controller_of(body)
    return bool(
        owner and owner.get("kind") == "Canary" and owner.get("name") == canary.metadata.name
    )


def has_canary_controller(body: Mapping[str, Any]) -> bool:
    owner = controller_of(body)
    return bool(owner and owner.get("kind") == "Canary")


def filter_metadata(meta: Mapping[str, str] | None) -> dict[str, str]:
    """Drop Flux's keys so Flux never prunes or overrides objects canary-engine generates."""
    return {k: v for k, v in (meta or {}).items() if FLUX_MARKER not in k}


def include_by_prefix(meta: Mapping[str, str] | None, prefixes: Iterable[str]) -> dict[str, str]:
    """Flagger's ``-include-label-prefix`` filter: ``*`` keeps everything; Flux keys never."""
    wanted = tuple(prefixes)
    return {
        k: v
        for k, v in (meta or {}).items()
        if FLUX_MARKER not in k and any(p == "*" or k.startswith(p) for p in wanted)
    }


def service_spec(canary: Canary) -> ServiceSpec:
    if canary.spec.service is None:
        raise RoutingError(
            f"canary {canary.dotted} has no spec.service; the service port is required to "
            "generate services and routes"
        )
    return canary.spec.service


def service_timeouts(canary: Canary) -> dict[str, str]:
    """The timeouts ``spec.service`` sets, by field path (``timeout``, ``retries.perTryTimeout``),
    for the routers that check them against their CRDs' duration rules."""
    service = canary.spec.service
    if service is None:
        return {}
    found = {
        "spec.service.timeout": service.timeout,
        "spec.service.retries.perTryTimeout": (service.retries or {}).get("perTryTimeout"),
    }
    return {field: str(value) for field, value in found.items() if value}


def workload_kind(canary: Canary) -> Kind:
    """The Kind of the target and its ``-primary`` copy (a Deployment or a DaemonSet)."""
    return DAEMONSET if canary.spec.target_ref.kind == "DaemonSet" else DEPLOYMENT


def target_ref(canary: Canary) -> ObjectRef:
    return ObjectRef(workload_kind(canary), canary.metadata.namespace, canary.spec.target_ref.name)


#: What the primary's objects add to the target's names and selector label value.
PRIMARY_SUFFIX: Final = "-primary"


def primary_ref(canary: Canary) -> ObjectRef:
    return ObjectRef(
        workload_kind(canary),
        canary.metadata.namespace,
        f"{canary.spec.target_ref.name}{PRIMARY_SUFFIX}",
    )


async def get_target(cluster: Cluster, canary: Canary) -> ReadBody:
    """The target Deployment (or DaemonSet); WorkloadError naming it when it does not exist."""
    ref = target_ref(canary)
    body = await cluster.get(ref)
    if body is None:
        raise WorkloadError(f"{ref.kind.kind.lower()} {ref.name}.{ref.namespace} not found")
    return body


def selector_label_of(deployment: Mapping[str, Any], candidates: Iterable[str]) -> tuple[str, str]:
    """The first candidate key present in ``spec.selector.matchLabels``, and its value."""
    keys = tuple(candidates)
    match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for key in keys:
        if key in match:
            return key, str(match[key])
    meta = deployment.get("metadata") or {}
    raise WorkloadError(
        f"deployment {meta.get('name')}.{meta.get('namespace')} spec.selector.matchLabels "
        f"must contain one of [{' '.join(keys)}]"
    )


#: Kubernetes' longest label value.
_LABEL_VALUE_MAX = 63


def check_primary_label(deployment: Mapping[str, Any], key: str, value: str) -> None:
    """WorkloadError when ``<value>-primary``, the selector label value of the primary workload,
    its pods and the primary Service, would be over Kubernetes' 63 characters: the API server
    refuses it on every write (as it refuses Flagger's, which fails each tick with the 422).
    Checked before the primary is made; reading the label (finalizing, the canary's Service)
    does not need the suffix and is not refused."""
    primary = f"{value}{PRIMARY_SUFFIX}"
    if len(primary) <= _LABEL_VALUE_MAX:
        return
    meta = deployment.get("metadata") or {}
    kind = str(deployment.get("kind") or "deployment").lower()
    raise WorkloadError(
        f"{kind} {meta.get('name')}.{meta.get('namespace')} spec.selector.matchLabels {key} is "
        f"{len(value)} characters: the primary's {key}={primary} would be {len(primary)}, and a "
        f"Kubernetes label value has at most {_LABEL_VALUE_MAX}; shorten it to at most "
        f"{_LABEL_VALUE_MAX - len(PRIMARY_SUFFIX)} characters"
    )


def replicas_of(deployment: Mapping[str, Any]) -> int:
    """``spec.replicas`` with the API server's default of 1."""
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def template_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    spec = deployment.get("spec") or {}
    return dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
