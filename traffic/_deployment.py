"""DeploymentWorkload: the target Deployment and its ``<target>-primary`` copy (Flagger's
DeploymentController, flagger-behaviour §2.3, §2.8, §2.9, §2.13).

Jobs, all through the Cluster seam:

* **revision** — a content hash of the target's ``spec.template`` (ignoring the
  ``canary-engine.io/apex`` pod label the kubernetes router adds, so adding it is not a release)
  plus Flagger-compatible checksums of the ConfigMaps and Secrets the pod template references;
* **initialize** — create-only bootstrap of the primary Deployment, ``-primary`` config copies
  and the primary HPA;
* **promote** — copy the target's template (and configs, replicas, HPA) to the primary. The
  ``flagger-id`` pod annotation is derived from the revision rather than random, so promoting
  the same revision twice writes nothing instead of starting a second rolling update;
* **readiness** — Flagger's rollout checks, including the non-retriable progress-deadline rules,
  the ready-threshold percentages and (our Q12 change) "primary scaled to zero";
* **scale_to_zero / scale_from_zero / finalize** — the replica moves of §2.13 and §2.15.

Every write is computed as a diff against what is stored and skipped when empty, so a
steady-state tick performs reads only. Imports only ``config`` and the Cluster seam; time
comes in as an argument.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from config import Canary, NotSupportedError
from traffic._errors import WorkloadError
from traffic._objects import (
    APEX_LABEL,
    DECLARED_REPLICAS_ANNOTATION,
    DEFAULT_SELECTOR_LABELS,
    FLUX_MARKER,
    KUBECTL_ANNOTATION,
    NO_CHANGE,
    PRIMARY_SUFFIX,
    check_primary_label,
    diff_or_empty,
    filter_metadata,
    get_target,
    include_by_prefix,
    merge_diff,
    owner_reference,
    primary_ref,
    replace_map,
    replicas_of,
    selector_label_of,
    target_ref,
    without_none,
)
from traffic._replica_split import DeploymentReplicaSplit
from traffic._scaled_object import ScaledObjectScaler
from traffic._types import Readiness, Revision, Workload
from traffic.cluster import CONFIGMAP, HPA, SECRET, Body, Cluster, ObjectRef, ReadBody

CONFIG_TRACKING_ANNOTATION: Final = "flagger.app/config-tracking"
FLAGGER_ID_ANNOTATION: Final = "flagger-id"

#: Secret types Flagger tracks; registry credentials belong to service accounts, not releases.
_TRACKED_SECRET_TYPES: Final = frozenset(
    {"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"}
)
#: Deployment annotations owned by kubectl / the Deployment controller; never copied across.
_UNCOPIED_ANNOTATIONS: Final = frozenset({"deployment.kubernetes.io/revision", KUBECTL_ANNOTATION})
#: Deployment spec fields a promotion copies from the target (replicas handled separately).
_PROMOTED_SPEC_FIELDS: Final = (
    "progressDeadlineSeconds",
    "minReadySeconds",
    "revisionHistoryLimit",
    "strategy",
)
#: Annotation key prefixes owned by the Deployment and DaemonSet controllers.
_CONTROLLER_ANNOTATIONS: Final = ("deployment.kubernetes.io/", "deprecated.daemonset.template.")


@dataclass(frozen=True, slots=True)
class _Config:
    """A tracked ConfigMap or Secret: key ``configmap/<name>`` or ``secret/<name>``."""

    kind: Literal["configmap", "secret"]
    name: str
    checksum: str
    body: ReadBody

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def config_checksum(data: Any) -> str:
    """Flagger's checksum of a config's ``data``: 16 hex chars of sha256 over Go's JSON.

    Go's encoder sorts map keys, writes no spaces, keeps non-ASCII as UTF-8 and escapes ``<``,
    ``>``, ``&``, U+2028 and U+2029; doing the same keeps ``status.trackedConfigs`` written by
    Flagger valid, so taking over from Flagger does not look like a config change.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return hashlib.sha256(text.encode("utf-8")).digest()[:8].hex()


def template_hash(template: Mapping[str, Any] | None) -> str:
    """A stable content hash of a pod template, without the label the kubernetes router adds."""
    tpl = copy.deepcopy(dict(template or {}))
    meta = tpl.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        meta["labels"].pop(APEX_LABEL, None)
        if not meta["labels"]:
            del meta["labels"]
    text = json.dumps(tpl, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_own_revision_hash(value: str) -> bool:
    """Whether a status hash was written by canary-engine (16 hex digits). Flagger writes a short
    FNV hash in another alphabet, so a Canary taken over from Flagger is recognisable."""
    return len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def flagger_id(revision: Revision) -> str:
    """The ``flagger-id`` pod annotation for a revision: a UUID derived from its content.

    It changes whenever the template or any tracked config changes (so a config-only release
    still rolls the primary's pods), and never otherwise.
    """
    text = json.dumps(
        {"spec": revision.spec_hash, "configs": revision.configs},
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def primary_labels(labels: Mapping[str, str] | None, key: str, value: str) -> dict[str, str]:
    """Flagger's ``makePrimaryLabels``: the selector label set to ``<value>-primary``, Flux's
    ``*.toolkit.fluxcd.io`` labels left out (Flux would take the primary's pods for its own)."""
    out = {k: v for k, v in (labels or {}).items() if k != key and FLUX_MARKER not in k}
    out[key] = value
    return out


class DeploymentWorkload:
    """The ``Workload`` for ``targetRef.kind: Deployment``.

    ``selector_labels``: candidate selector label keys (Flagger's ``-selector-labels``); the
    routers must be given the same ones. ``include_label_prefixes``: label/annotation key prefixes
    copied to primary objects (``-include-label-prefix``; ``*`` for all). ``config_tracking``:
    track and copy referenced ConfigMaps/Secrets (``-enable-config-tracking``).
    """

    #: Spec fields copied to the primary besides the template (a DaemonSet has others).
    promoted_spec_fields: tuple[str, ...] = _PROMOTED_SPEC_FIELDS
    #: Whether the workload has ``spec.replicas`` (a DaemonSet runs one pod per node).
    has_replicas: bool = True
    #: The kind as Flagger's readiness messages name it.
    kind_word: str = "deployment"

    def __init__(
        self,
        cluster: Cluster,
        *,
        selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
        include_label_prefixes: Iterable[str] = (),
        config_tracking: bool = True,
    ) -> None:
        self._cluster = cluster
        self._selector_labels = tuple(selector_labels)
        self._include = tuple(include_label_prefixes)
        self._config_tracking = config_tracking
        self._scaled_objects = ScaledObjectScaler(cluster, include_label_prefixes=self._include)

    def replica_split(self) -> DeploymentReplicaSplit:
        """What this workload offers a router that splits traffic by pod counts."""
        return DeploymentReplicaSplit(self._cluster)

    # ------------------------------------------------------------------ identity

    async def selector_label(self, canary: Canary) -> tuple[str, str]:
        """The target's selector label key and value (e.g. ``("app", "podinfo")``).

        Raises WorkloadError when the target is missing or its ``spec.selector.matchLabels``
        holds none of the selector labels (Flagger's message).
        """
        target = await get_target(self._cluster, canary)
        return selector_label_of(target, self._selector_labels)

    async def revision(self, canary: Canary) -> Revision:
        target = await get_target(self._cluster, canary)
        configs = await self._tracked_configs(canary, target)
        return self._revision_of(target, configs)

    # ------------------------------------------------------------------ bootstrap and promotion

    async def initialize(self, canary: Canary) -> None:
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        if await self._cluster.get(primary_ref(canary)) is None:
            check_primary_label(target, key, value)  # before anything is written
            configs = await self._tracked_configs(canary, target)
            await self._sync_primary_configs(canary, configs)
            await self._create_primary(canary, target, key, value, configs)
        await self._sync_primary_hpa(canary, init=True)

    def _promoted_fields(
        self, target_spec: Mapping[str, Any], primary_spec: Mapping[str, Any], fields: list[str]
    ) -> Body:
        """The spec fields besides the template that promotion gives the primary (the target's;
        ``primary_spec`` is what the primary has now)."""
        return {f: target_spec[f] for f in fields if target_spec.get(f) is not None}

    async def promote(self, canary: Canary) -> None:
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        ref = primary_ref(canary)
        primary = await self._cluster.get(ref)
        if primary is None:
            raise WorkloadError(
                f"deployment {ref.name}.{ref.namespace} not found; initialize the canary first"
            )
        configs = await self._tracked_configs(canary, target)
        await self._sync_primary_configs(canary, configs)

        target_spec = target.get("spec") or {}
        primary_spec = primary.get("spec") or {}
        fields = list(self.promoted_spec_fields)
        current = {f: primary_spec[f] for f in fields if f in primary_spec}
        desired = self._promoted_fields(target_spec, primary_spec, fields)
        if self.has_replicas and canary.spec.autoscaler_ref is None:
            # NB: without an autoscaler the primary takes the target's replicas, but never a
            # split-shrunk count (the kubernetes router records the intended one) and never 0.
            wanted = _declared_replicas(target)
            if wanted > 0:
                current["replicas"] = primary_spec.get("replicas")
                desired["replicas"] = wanted
        current["template"] = primary_spec.get("template")
        desired["template"] = self._primary_template(
            target, key, value, configs, self._revision_of(target, configs)
        )
        patch: Body = {}
        spec_patch = merge_diff(current, desired)
        if spec_patch is not NO_CHANGE:
            patch["spec"] = spec_patch
        # Flagger's Promote replaces the primary's labels and annotations with the target's,
        # filtered by -include-label-prefix: a label removed from the target leaves the primary.
        meta = primary.get("metadata") or {}
        labels = replace_map(
            meta.get("labels"),
            primary_labels(
                include_by_prefix(_labels(target), self._include), key, f"{value}{PRIMARY_SUFFIX}"
            ),
        )
        annotations = replace_map(
            meta.get("annotations"),
            {
                **_controller_owned(meta.get("annotations")),
                **include_by_prefix(
                    (target.get("metadata") or {}).get("annotations"), self._include
                ),
            },
        )
        if labels or annotations:
            patch["metadata"] = without_none(
                {"labels": labels or None, "annotations": annotations or None}
            )
        if patch:
            await self._cluster.patch(ref, patch)
        await self._sync_primary_hpa(canary, init=False)

    async def primary_runs(self, canary: Canary, revision: Revision) -> bool | None:
        """Read from the ``flagger-id`` of the primary's pod template, which names the revision
        copied there (``flagger_id``); a primary Flagger made carries a random one, and so
        runs no revision of ours. None when there is no primary."""
        primary = await self._cluster.get(primary_ref(canary))
        if primary is None:
            return None
        template = (primary.get("spec") or {}).get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        return bool(annotations.get(FLAGGER_ID_ANNOTATION) == flagger_id(revision))

    # ------------------------------------------------------------------ readiness

    async def readiness(self, canary: Canary, *, primary: bool, now: datetime) -> Readiness:
        """Flagger's ``IsPrimaryReady`` / ``IsCanaryReady`` as a Readiness value.

        Messages are Flagger's: ``<target>-primary.<ns> not ready: …`` and ``canary deployment
        <target>.<ns> not ready: …``. ``retriable=False`` when the Progressing condition says
        ProgressDeadlineExceeded, or when the Deployment has been short of available replicas
        for longer than ``progressDeadlineSeconds``.
        """
        ref = primary_ref(canary) if primary else target_ref(canary)
        analysis = canary.spec.effective_analysis
        threshold = analysis.primary_ready_percent if primary else analysis.canary_ready_percent
        body = await self._cluster.get(ref)
        if body is None:
            prefix = self._not_ready_prefix(canary, primary=primary, retriable=True)
            return Readiness(
                ready=False,
                message=f"{prefix}: {self.kind_word} {ref.name}.{ref.namespace} not found",
            )
        return self._body_readiness(canary, body, primary=primary, threshold=threshold, now=now)

    def _not_ready_prefix(self, canary: Canary, *, primary: bool, retriable: bool) -> str:
        """How Flagger's readiness messages of this kind start: ``<target>-primary.<ns> not
        ready`` and ``canary deployment <target>.<ns> not ready`` (``IsPrimaryReady`` /
        ``IsCanaryReady``; ``retriable`` is for kinds whose words name it)."""
        if primary:
            ref = primary_ref(canary)
            return f"{ref.name}.{ref.namespace} not ready"
        ref = target_ref(canary)
        return f"canary {self.kind_word} {ref.name}.{ref.namespace} not ready"

    def _body_readiness(
        self,
        canary: Canary,
        body: Mapping[str, Any],
        *,
        primary: bool,
        threshold: int,
        now: datetime,
    ) -> Readiness:
        """Readiness of the fetched workload ``body``."""
        retriable, reason = deployment_ready(
            body,
            deadline_seconds=canary.spec.progress_deadline_seconds,
            threshold=threshold,
            now=now,
        )
        if reason is not None:
            prefix = self._not_ready_prefix(canary, primary=primary, retriable=retriable)
            return Readiness(ready=False, retriable=retriable, message=f"{prefix}: {reason}")
        # Q12: Flagger compares pointers here and never fires; a primary with no pods serves no
        # traffic, so it is not ready (retriable: someone scaled it down, it can come back).
        if primary and (body.get("spec") or {}).get("replicas") == 0:
            return Readiness(
                ready=False,
                message=f"halt {canary.dotted} advancement: primary deployment is scaled to zero",
            )
        return Readiness(ready=True)

    # ------------------------------------------------------------------ scaling

    async def scale_to_zero(self, canary: Canary) -> None:
        await self._scale_target(canary, await get_target(self._cluster, canary), 0)
        if _is_keda(canary):  # else KEDA scales the target straight back up
            await self._scaled_objects.pause(canary)

    async def scale_from_zero(self, canary: Canary) -> None:
        """Scale the target up for analysis (§2.13 ScaleFromZero)."""
        target = await get_target(self._cluster, canary)
        if _is_keda(canary):
            await self._scaled_objects.resume(canary)
        declared = (target.get("spec") or {}).get("replicas")
        replicas = 1
        if declared is not None and int(declared) > 0:
            replicas = int(declared)
        elif canary.spec.autoscaler_ref is None:
            ref = primary_ref(canary)
            primary = await self._cluster.get(ref)
            if primary is None:
                raise WorkloadError(f"deployment {ref.name}.{ref.namespace} not found")
            replicas = max(replicas_of(primary), 1)
        else:
            if _is_keda(canary):
                minimum = await self._scaled_objects.min_replicas(canary)
            else:
                hpa = await self._cluster.get(self._autoscaler_ref(canary))
                minimum = ((hpa or {}).get("spec") or {}).get("minReplicas")
            if minimum is not None and int(minimum) > 1:
                replicas = int(minimum)
        await self._scale_target(canary, target, replicas)

    async def finalize(self, canary: Canary) -> None:
        """Give the target the primary's replicas so it can serve again (revertOnDeletion)."""
        target = await get_target(self._cluster, canary)
        primary = await self._cluster.get(primary_ref(canary))
        if primary is None:
            await self.scale_from_zero(canary)
            return
        if _is_keda(canary):
            await self._scaled_objects.resume(canary)
        await self._scale_target(canary, target, replicas_of(primary))

    # ------------------------------------------------------------------ internals

    async def _scale_target(self, canary: Canary, target: ReadBody, replicas: int) -> None:
        patch: Body = {}
        if (target.get("spec") or {}).get("replicas") != replicas:
            patch["spec"] = {"replicas": replicas}
        if DECLARED_REPLICAS_ANNOTATION in (
            (target.get("metadata") or {}).get("annotations") or {}
        ):
            # A fresh baseline: the split's record of the intended replicas no longer applies.
            patch["metadata"] = {"annotations": {DECLARED_REPLICAS_ANNOTATION: None}}
        if patch:
            await self._cluster.patch(target_ref(canary), patch)

    def _revision_of(self, target: Mapping[str, Any], configs: Mapping[str, _Config]) -> Revision:
        template = (target.get("spec") or {}).get("template")
        return Revision(
            spec_hash=template_hash(template),
            configs={k: c.checksum for k, c in sorted(configs.items())},
        )

    async def _tracked_configs(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> dict[str, _Config]:
        """The ConfigMaps/Secrets the target's pod spec references, keyed ``<kind>/<name>``."""
        if not self._config_tracking:
            return {}
        namespace = canary.metadata.namespace
        pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
        found: dict[str, _Config] = {}
        for (kind, name), required in _config_refs(pod_spec).items():
            ref = ObjectRef(CONFIGMAP if kind == "configmap" else SECRET, namespace, name)
            body = await self._cluster.get(ref)
            if body is None:
                if required:
                    raise WorkloadError(
                        f"{kind} {name}.{namespace} not found (referenced by deployment "
                        f"{canary.spec.target_ref.name}.{namespace}; mark the reference "
                        "optional: true if it may be absent)"
                    )
                continue
            annotations = (body.get("metadata") or {}).get("annotations") or {}
            if str(annotations.get(CONFIG_TRACKING_ANNOTATION, "")).startswith("disable"):
                continue
            if kind == "secret" and body.get("type", "Opaque") not in _TRACKED_SECRET_TYPES:
                continue
            config = _Config(kind, name, config_checksum(body.get("data")), body)
            found[config.key] = config
        return found

    async def _sync_primary_configs(self, canary: Canary, configs: Mapping[str, _Config]) -> None:
        """Create or update the ``<name>-primary`` copy of every tracked config."""
        namespace = canary.metadata.namespace
        owner = owner_reference(canary)
        for config in configs.values():
            kind = CONFIGMAP if config.kind == "configmap" else SECRET
            ref = ObjectRef(kind, namespace, f"{config.name}{PRIMARY_SUFFIX}")
            source = config.body
            data: dict[str, Any] = {
                k: source[k]
                for k in ("data", "binaryData")
                if k in source and source[k] is not None
            }
            labels = include_by_prefix((source.get("metadata") or {}).get("labels"), self._include)
            existing = await self._cluster.get(ref)
            if existing is None:
                body: Body = {
                    "apiVersion": "v1",
                    "kind": kind.kind,
                    "metadata": without_none(
                        {
                            "name": ref.name,
                            "namespace": namespace,
                            "labels": labels or None,
                            "ownerReferences": [owner],
                        }
                    ),
                    **data,
                }
                if kind == SECRET:
                    body["type"] = source.get("type", "Opaque")
                await self._cluster.create(body)
                continue
            meta = existing.get("metadata") or {}
            owners = _config_owners(meta.get("ownerReferences") or (), owner)
            patch: Body = {}
            for field in ("data", "binaryData"):
                sub = merge_diff(existing.get(field) or {}, data.get(field) or {})
                if sub is not NO_CHANGE:
                    patch[field] = sub
            meta_patch = without_none(
                {
                    "labels": diff_or_empty(meta.get("labels"), labels) or None,
                    "ownerReferences": owners if meta.get("ownerReferences") != owners else None,
                }
            )
            if meta_patch:
                patch["metadata"] = meta_patch
            if patch:
                await self._cluster.patch(ref, patch)

    async def _create_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        key: str,
        value: str,
        configs: Mapping[str, _Config],
    ) -> None:
        spec = target.get("spec") or {}
        replicas = spec.get("replicas")
        primary_value = f"{value}{PRIMARY_SUFFIX}"
        ref = primary_ref(canary)
        annotations = {
            k: v
            for k, v in filter_metadata((target.get("metadata") or {}).get("annotations")).items()
            if k not in _UNCOPIED_ANNOTATIONS and k != DECLARED_REPLICAS_ANNOTATION
        }
        body: Body = {
            "apiVersion": ref.kind.api_version,
            "kind": ref.kind.kind,
            "metadata": without_none(
                {
                    "name": ref.name,
                    "namespace": ref.namespace,
                    "labels": primary_labels(
                        include_by_prefix(_labels(target), self._include), key, primary_value
                    ),
                    "annotations": annotations or None,
                    "ownerReferences": [owner_reference(canary)],
                }
            ),
            "spec": without_none(
                {
                    **{f: spec.get(f) for f in self.promoted_spec_fields},
                    "replicas": (int(replicas) if replicas is not None and int(replicas) > 0 else 1)
                    if self.has_replicas
                    else None,
                    "selector": {"matchLabels": {key: primary_value}},
                    "template": self._primary_template(
                        target, key, value, configs, self._revision_of(target, configs)
                    ),
                }
            ),
        }
        await self._cluster.create(body)

    def _primary_template(
        self,
        target: Mapping[str, Any],
        key: str,
        value: str,
        configs: Mapping[str, _Config],
        revision: Revision,
    ) -> Body:
        """The target's pod template as the primary runs it (§2.8)."""
        template: Body = copy.deepcopy((target.get("spec") or {}).get("template") or {})
        meta = template.get("metadata")
        if not isinstance(meta, dict):
            meta = template["metadata"] = {}
        meta["labels"] = primary_labels(meta.get("labels"), key, f"{value}{PRIMARY_SUFFIX}")
        annotations = filter_metadata(meta.get("annotations"))
        annotations[FLAGGER_ID_ANNOTATION] = flagger_id(revision)
        meta["annotations"] = annotations
        target_name = str((target.get("metadata") or {}).get("name", ""))
        template["spec"] = _primary_pod_spec(
            template.get("spec") or {}, configs, target_name, self._selector_labels
        )
        return template

    def _autoscaler_ref(self, canary: Canary) -> ObjectRef:
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        if ref.kind != "HorizontalPodAutoscaler":
            raise NotSupportedError(
                f"autoscalerRef kind {ref.kind} is not supported yet; canary-engine supports "
                "HorizontalPodAutoscaler (autoscaling/v2)"
            )
        return ObjectRef(HPA, canary.metadata.namespace, ref.name)

    async def _sync_primary_hpa(self, canary: Canary, *, init: bool) -> None:
        """Create ``<hpa>-primary`` when missing; with ``init=False`` also bring it in sync."""
        autoscaler = canary.spec.autoscaler_ref
        if autoscaler is None:
            return
        if _is_keda(canary):
            await self._scaled_objects.sync_primary(canary, init=init)
            return
        ref = self._autoscaler_ref(canary)
        hpa = await self._cluster.get(ref)
        if hpa is None:
            raise WorkloadError(f"HorizontalPodAutoscaler {ref.name}.{ref.namespace} not found")
        source = hpa.get("spec") or {}
        scale_target = source.get("scaleTargetRef") or {}
        bounds = autoscaler.primary_scaler_replicas
        desired = without_none(
            {
                "minReplicas": (bounds.min_replicas if bounds else None)
                or source.get("minReplicas"),
                "maxReplicas": (bounds.max_replicas if bounds else None)
                or source.get("maxReplicas"),
                "metrics": source.get("metrics"),
                "behavior": source.get("behavior"),
            }
        )
        primary_hpa = ObjectRef(HPA, ref.namespace, f"{ref.name}{PRIMARY_SUFFIX}")
        existing = await self._cluster.get(primary_hpa)
        hpa_meta = hpa.get("metadata") or {}
        if existing is None:
            await self._cluster.create(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": without_none(
                        {
                            "name": primary_hpa.name,
                            "namespace": primary_hpa.namespace,
                            "labels": filter_metadata(hpa_meta.get("labels")) or None,
                            "ownerReferences": [owner_reference(canary)],
                        }
                    ),
                    "spec": {
                        "scaleTargetRef": without_none(
                            {
                                "apiVersion": scale_target.get("apiVersion", "apps/v1"),
                                "kind": scale_target.get("kind", "Deployment"),
                                "name": primary_ref(canary).name,
                            }
                        ),
                        **desired,
                    },
                }
            )
            return
        if init:
            return
        existing_spec = existing.get("spec") or {}
        synced = ("minReplicas", "maxReplicas", "metrics", "behavior")
        current = {k: existing_spec[k] for k in synced if k in existing_spec}
        patch: Body = {}
        spec_patch = merge_diff(current, desired)
        if spec_patch is not NO_CHANGE:
            patch["spec"] = spec_patch
        meta = existing.get("metadata") or {}
        meta_patch = without_none(
            {
                "labels": diff_or_empty(
                    meta.get("labels"), include_by_prefix(hpa_meta.get("labels"), self._include)
                )
                or None,
                "annotations": diff_or_empty(
                    meta.get("annotations"),
                    include_by_prefix(hpa_meta.get("annotations"), self._include),
                )
                or None,
            }
        )
        if meta_patch:
            patch["metadata"] = meta_patch
        if patch:
            await self._cluster.patch(primary_hpa, patch)


def _same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """The same Canary: by uid when both have one (the API server always sets it), else name."""
    if a.get("uid") and b.get("uid"):
        return bool(a.get("uid") == b.get("uid"))
    return bool(a.get("name") == b.get("name"))


def _config_owners(current: Iterable[Mapping[str, Any]], owner: Body) -> list[Body]:
    """The owner references of a shared ``-primary`` config copy once ``owner`` (a Canary) uses
    it: every Canary that uses it stays an owner, so deleting one Canary does not let the
    garbage collector delete a copy another primary still mounts (Flagger's
    TestConfigTracker_ConfigOwnerMultiDeployment). One controller at most (the API server's
    rule): the first Canary's; foreign owners are kept, demoted, as the Canaries control it."""
    canaries = [dict(o) for o in current if o.get("kind") == "Canary"]
    foreign = [{**o, "controller": False} for o in current if o.get("kind") != "Canary"]
    if not any(_same_owner(o, owner) for o in canaries):
        has_controller = any(o.get("controller") for o in canaries)
        canaries.append({**owner, "controller": not has_controller})
    if canaries and not any(o.get("controller") for o in canaries):
        canaries[0] = {**canaries[0], "controller": True}
    return canaries + foreign


def _is_keda(canary: Canary) -> bool:
    ref = canary.spec.autoscaler_ref
    return ref is not None and ref.kind == "ScaledObject"


def deployment_ready(
    body: Mapping[str, Any], *, deadline_seconds: int, threshold: int, now: datetime
) -> tuple[bool, str | None]:
    """Flagger's ``isDeploymentReady``: ``(retriable, reason)``; ``reason`` None means ready."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    name = meta.get("name")
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return True, (
            "waiting for rollout to finish: observed deployment generation less than desired "
            "generation"
        )
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    progressing = conditions.get("Progressing")
    available = conditions.get("Available")
    retriable = True
    if (
        progressing is not None
        and available is not None
        and available.get("status") == "False"
        and available.get("reason") == "MinimumReplicasUnavailable"
    ):
        if deadline_passed(available.get("lastUpdateTime"), deadline_seconds, now):
            retriable = False
    updated = int(status.get("updatedReplicas", 0))
    ready_needed = ready_threshold_count(updated, threshold)
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, f'deployment "{name}" exceeded its progress deadline'
    wanted = spec.get("replicas")
    if wanted is not None and updated < int(wanted):
        return retriable, (
            f"waiting for rollout to finish: {updated} out of {int(wanted)} new replicas have "
            "been updated"
        )
    total = int(status.get("replicas", 0))
    if total > updated:
        return retriable, (
            f"waiting for rollout to finish: {total - updated} old replicas are pending termination"
        )
    available_replicas = int(status.get("availableReplicas", 0))
    if available_replicas < ready_needed:
        return retriable, (
            f"waiting for rollout to finish: {available_replicas} of {ready_needed} "
            f"(readyThreshold {threshold}%) updated replicas are available"
        )
    return True, None


def ready_threshold_count(count: int, threshold: int) -> int:
    """How many of ``count`` replicas a ready threshold of ``threshold`` % asks to be available,
    computed as Flagger's ``isDeploymentReady`` does, in Go float32:
    ``int32(float32(count) * (float32(threshold) / float32(100)))``. The float32 product of a
    ratio like 0.53 falls just short of the whole number, so 53 % of 100 replicas asks 52, not 53
    (``pkg/canary/deployment_ready.go``). (Each operation is done in float64 and rounded to
    float32, which gives the float32 result exactly.)"""
    ratio = _float32(_float32(float(threshold)) / _float32(100.0))
    return int(_float32(_float32(float(count)) * ratio))


def _float32(value: float) -> float:
    """``value`` rounded to the nearest IEEE 754 single-precision number."""
    rounded: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return rounded


def deadline_passed(since: Any, deadline_seconds: int, now: datetime) -> bool:
    """``since`` (an RFC 3339 time) plus the progress deadline is before ``now``; False when
    ``since`` is missing or unreadable (nothing says how long it has been)."""
    start = _parse_time(since)
    return start is not None and start + timedelta(seconds=deadline_seconds) < _aware(now)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _labels(body: Mapping[str, Any]) -> dict[str, str]:
    return dict((body.get("metadata") or {}).get("labels") or {})


def _controller_owned(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The primary's annotations its Kubernetes controller writes (the Deployment's revision, the
    DaemonSet's template generation). Flagger's Update drops them and the controller writes them
    straight back; a patch keeps them instead of causing that round trip."""
    return {k: v for k, v in (annotations or {}).items() if k.startswith(_CONTROLLER_ANNOTATIONS)}


def _declared_replicas(target: Mapping[str, Any]) -> int:
    annotations = (target.get("metadata") or {}).get("annotations") or {}
    recorded = annotations.get(DECLARED_REPLICAS_ANNOTATION)
    if recorded is not None:
        try:
            return int(recorded)
        except ValueError:
            pass
    value = (target.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _containers(pod_spec: Mapping[str, Any]) -> list[Body]:
    return [*(pod_spec.get("containers") or ()), *(pod_spec.get("initContainers") or ())]


_ConfigKind = Literal["configmap", "secret"]


def _config_ref_sites(pod_spec: Mapping[str, Any]) -> Iterator[tuple[_ConfigKind, Any, str]]:
    """Every place a pod spec can name a ConfigMap or Secret, init containers included: its
    kind, what stands there (the mapping holding the reference, or None when absent) and the
    key of the name in it."""
    for volume in pod_spec.get("volumes") or ():
        yield "configmap", volume.get("configMap"), "name"
        yield "secret", volume.get("secret"), "secretName"
        for source in (volume.get("projected") or {}).get("sources") or ():
            yield "configmap", source.get("configMap"), "name"
            yield "secret", source.get("secret"), "name"
    for container in _containers(pod_spec):
        for env in container.get("env") or ():
            value_from = env.get("valueFrom") or {}
            yield "configmap", value_from.get("configMapKeyRef"), "name"
            yield "secret", value_from.get("secretKeyRef"), "name"
        for env_from in container.get("envFrom") or ():
            yield "configmap", env_from.get("configMapRef"), "name"
            yield "secret", env_from.get("secretRef"), "name"


def _config_refs(pod_spec: Mapping[str, Any]) -> dict[tuple[_ConfigKind, str], bool]:
    """Every ConfigMap/Secret the pod spec references, and whether any reference requires it."""
    refs: dict[tuple[_ConfigKind, str], bool] = {}
    for kind, ref, name_key in _config_ref_sites(pod_spec):
        if not isinstance(ref, Mapping) or not ref.get(name_key):
            continue
        key = (kind, str(ref[name_key]))
        refs[key] = refs.get(key, False) or not ref.get("optional", False)
    return refs


def _primary_pod_spec(
    pod_spec: Mapping[str, Any],
    configs: Mapping[str, _Config],
    target_name: str,
    selector_labels: tuple[str, ...],
) -> Body:
    """The pod spec with tracked config references renamed to their ``-primary`` copies, and
    topology-spread / anti-affinity selectors that name the target pointed at the primary."""
    spec: Body = copy.deepcopy(dict(pod_spec))

    # NB: the sites tracking scans, init containers too; Flagger scans them for tracking but
    # forgets to rename them, which would leave the primary's init containers reading the
    # canary's configs.
    for kind, ref, name_key in _config_ref_sites(spec):
        if isinstance(ref, dict) and f"{kind}/{ref.get(name_key)}" in configs:
            ref[name_key] = f"{ref[name_key]}{PRIMARY_SUFFIX}"

    def point_at_primary(selector: Any) -> None:
        if not isinstance(selector, dict):
            return
        for expression in selector.get("matchExpressions") or ():
            if expression.get("key") in selector_labels:
                values = expression.get("values") or []
                for i, v in enumerate(values):
                    if v == target_name:
                        values[i] = f"{target_name}{PRIMARY_SUFFIX}"
                        break
        match = selector.get("matchLabels") or {}
        for key in list(match):
            if key in selector_labels and match[key] == target_name:
                match[key] = f"{target_name}{PRIMARY_SUFFIX}"

    for constraint in spec.get("topologySpreadConstraints") or ():
        point_at_primary(constraint.get("labelSelector"))
    anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
        point_at_primary((term.get("podAffinityTerm") or {}).get("labelSelector"))
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or ():
        point_at_primary(term.get("labelSelector"))
    return spec


if TYPE_CHECKING:
    # Lets ``mypy traffic`` prove DeploymentWorkload keeps up with the Workload protocol.
    def _conforms(cluster: Cluster) -> Workload:
        return DeploymentWorkload(cluster)
