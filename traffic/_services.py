"""ClusterIP services every router needs (Flagger's ``KubernetesDefaultRouter``, §3.1).

Three Services in the canary's namespace, named from ``spec.service.name`` (default: the
target's name):

* ``<svc>-canary`` selects the target's pods ``{<label>: <value>}``;
* ``<svc>-primary`` selects the primary's pods ``{<label>: <value>-primary}``;
* ``<svc>`` (apex) selects the primary by default; the kubernetes router passes another
  selector to split traffic without a mesh. A pre-existing user Service of that name is taken
  over (selector and ports rewritten) but keeps its metadata and gets no owner reference, and
  ``finalize_apex`` hands it back.

Ports: the main port ``{name: portName|http, protocol: TCP, port, targetPort}`` (+
``appProtocol``) and, with ``portDiscovery``, every other container port of the target (sidecars
``istio-proxy``/``envoy`` excluded). On update, ports and selector are always reconciled (node
ports kept); labels and annotations only when the Service is controlled by this Canary, keeping
``unmanagedMetadata`` keys and the ``canary-engine.io/`` keys routers own.

Imports only ``config`` and the Cluster seam; each write is a diff, skipped when empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from config import Canary, ServiceSpec
from traffic._errors import RoutingError
from traffic._objects import (
    KUBECTL_ANNOTATION,
    OWN_PREFIX,
    diff_or_empty,
    filter_metadata,
    get_target,
    has_canary_controller,
    is_owned_by,
    owned_metadata,
    replace_map,
    selector_label_of,
    service_spec,
    without_none,
)
from traffic.cluster import SERVICE, Body, Cluster, ObjectRef, ReadBody

_SIDECARS = frozenset({"istio-proxy", "envoy"})
_PORT_KEYS = ("name", "protocol", "port", "targetPort", "appProtocol", "nodePort")


class ClusterIPServices:
    """Creates and reconciles ``<svc>``, ``<svc>-primary`` and ``<svc>-canary``."""

    def __init__(self, cluster: Cluster, *, selector_labels: Iterable[str]) -> None:
        self._cluster = cluster
        self._selector_labels = tuple(selector_labels)

    async def selector(self, canary: Canary) -> tuple[str, str]:
        """The target's selector label key and value (WorkloadError if unusable)."""
        target = await get_target(self._cluster, canary)
        return selector_label_of(target, self._selector_labels)

    async def initialize(self, canary: Canary) -> None:
        """Create or update ``<svc>-canary`` and ``<svc>-primary`` (idempotent)."""
        if _service_target(canary):
            return
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        spec = service_spec(canary)
        name = canary.spec.service_name
        ports = service_ports(canary, target)
        await self._reconcile(
            canary, f"{name}-canary", key, {key: value}, _custom(spec, "canary"), ports
        )
        await self._reconcile(
            canary,
            f"{name}-primary",
            key,
            {key: f"{value}-primary"},
            _custom(spec, "primary"),
            ports,
        )

    async def reconcile_apex(
        self,
        canary: Canary,
        *,
        selector: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Create, adopt or update the apex ``<svc>``; by default it selects the primary pods.

        ``annotations`` are router-owned keys written whether or not the Service is ours.
        """
        if _service_target(canary):
            return
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        wanted = dict(selector) if selector is not None else {key: f"{value}-primary"}
        await self._reconcile(
            canary,
            canary.spec.service_name,
            key,
            wanted,
            _custom(service_spec(canary), "apex"),
            service_ports(canary, target),
            router_annotations=annotations or {},
        )

    async def apex(self, canary: Canary) -> ReadBody | None:
        return await self._cluster.get(self.apex_ref(canary))

    def apex_ref(self, canary: Canary) -> ObjectRef:
        return ObjectRef(SERVICE, canary.metadata.namespace, canary.spec.service_name)

    async def finalize_apex(self, canary: Canary) -> None:
        """Hand a user's apex Service back (§2.15 step 5).

        A Service controlled by a Canary is left alone (garbage collection removes it with the
        Canary). Otherwise its selector is restored from kubectl's last-applied configuration,
        or pointed at the target's pods, and the router-owned annotations are removed.
        """
        if _service_target(canary):
            return
        ref = self.apex_ref(canary)
        svc = await self._cluster.get(ref)
        if svc is None or has_canary_controller(svc):
            return
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        last_applied = annotations.get(KUBECTL_ANNOTATION)
        if last_applied:
            try:
                original = json.loads(last_applied)
            except ValueError:
                raise RoutingError(
                    f"service {ref.name}.{ref.namespace}: annotation {KUBECTL_ANNOTATION} is not "
                    "valid JSON; cannot restore the original selector"
                ) from None
            wanted = dict(((original.get("spec") or {}).get("selector")) or {})
        else:
            target = await get_target(self._cluster, canary)
            key, value = selector_label_of(target, self._selector_labels)
            wanted = {key: value}
        patch: Body = {}
        selector_patch = replace_map((svc.get("spec") or {}).get("selector"), wanted)
        if selector_patch:
            patch["spec"] = {"selector": selector_patch}
        own = {k: None for k in annotations if k.startswith(OWN_PREFIX)}
        if own:
            patch["metadata"] = {"annotations": own}
        if patch:
            await self._cluster.patch(ref, patch)

    async def _reconcile(
        self,
        canary: Canary,
        name: str,
        label_key: str,
        selector: Mapping[str, str],
        custom: tuple[dict[str, str], dict[str, str]],
        ports: list[Body],
        *,
        router_annotations: Mapping[str, str] | None = None,
    ) -> None:
        spec = service_spec(canary)
        ref = ObjectRef(SERVICE, canary.metadata.namespace, name)
        labels = {**custom[0], label_key: name}
        annotations = filter_metadata(custom[1])
        extra = dict(router_annotations or {})
        existing = await self._cluster.get(ref)
        if existing is None:
            await self._cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": owned_metadata(
                        canary,
                        name,
                        ref.namespace,
                        labels=labels,
                        annotations={**annotations, **extra},
                    ),
                    "spec": without_none(
                        {
                            "type": "ClusterIP",
                            "clusterIP": "None" if spec.headless else None,
                            "selector": dict(selector),
                            "ports": ports,
                            "trafficDistribution": spec.traffic_distribution,
                        }
                    ),
                }
            )
            return

        current_spec = existing.get("spec") or {}
        spec_patch: Body = {}
        wanted_ports = _keep_node_ports(ports, current_spec.get("ports") or [])
        if _normal_ports(wanted_ports) != _normal_ports(current_spec.get("ports") or []):
            spec_patch["ports"] = wanted_ports
        selector_patch = replace_map(current_spec.get("selector"), selector)
        if selector_patch:
            spec_patch["selector"] = selector_patch
        if current_spec.get("trafficDistribution") != spec.traffic_distribution:
            spec_patch["trafficDistribution"] = spec.traffic_distribution

        meta = existing.get("metadata") or {}
        have_labels = meta.get("labels") or {}
        have_annotations = meta.get("annotations") or {}
        meta_patch: Body = {}
        if is_owned_by(existing, canary):
            unmanaged = spec.unmanaged_metadata
            keep_labels = set((unmanaged.labels if unmanaged else None) or ())
            keep_annotations = set((unmanaged.annotations if unmanaged else None) or ())
            wanted_labels = {
                **{k: v for k, v in have_labels.items() if _kept(k, keep_labels)},
                **labels,
            }
            wanted_annotations = {
                **{k: v for k, v in have_annotations.items() if _kept(k, keep_annotations)},
                **annotations,
                **extra,
            }
            label_patch = diff_or_empty(have_labels, wanted_labels)
            annotation_patch = diff_or_empty(have_annotations, wanted_annotations)
        else:
            label_patch = {}
            annotation_patch = {k: v for k, v in extra.items() if have_annotations.get(k) != v}
        if label_patch:
            meta_patch["labels"] = label_patch
        if annotation_patch:
            meta_patch["annotations"] = annotation_patch

        patch: Body = {}
        if spec_patch:
            patch["spec"] = spec_patch
        if meta_patch:
            patch["metadata"] = meta_patch
        if patch:
            await self._cluster.patch(ref, patch)


def _service_target(canary: Canary) -> bool:
    """A Service target: its ``-primary``/``-canary`` copies are made by the workload
    (``traffic._service_target``), and the user's own Service is the apex; nothing to generate."""
    return canary.spec.target_ref.kind == "Service"


def service_ports(canary: Canary, target: Mapping[str, Any]) -> list[Body]:
    """The main service port, plus the target's other container ports with portDiscovery."""
    spec = service_spec(canary)
    ports: list[Body] = [
        without_none(
            {
                "name": spec.effective_port_name,
                "protocol": "TCP",
                "port": spec.port,
                "targetPort": spec.effective_target_port,
                "appProtocol": spec.app_protocol,
            }
        )
    ]
    if not spec.port_discovery:
        return ports
    discovered: dict[str, int] = {}
    pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod_spec.get("containers") or ():
        if container.get("name") in _SIDECARS:
            continue
        for index, port in enumerate(container.get("ports") or ()):
            number = int(port.get("containerPort", 0))
            if _is_main_port(spec.target_port, spec.port, port, number):
                continue
            name = port.get("name") or f"tcp-{container.get('name')}-{index}"
            discovered[str(name)] = number
    # NB: a discovered port that repeats a name or a port number already listed is left out:
    # Flagger appends it and the API server refuses the whole Service (validateServicePort: with
    # several ports each name is unique; ValidateService: no two share a (port, protocol)), so
    # the canary never initializes. The main port comes first and keeps its name and number.
    names = {str(p["name"]) for p in ports}
    numbers = {int(p["port"]) for p in ports}
    for name in sorted(discovered):
        number = discovered[name]
        if name in names or number in numbers:
            continue
        names.add(name)
        numbers.add(number)
        ports.append({"name": name, "protocol": "TCP", "port": number, "targetPort": number})
    return ports


def _is_main_port(
    target_port: int | str | None, port: int, found: Mapping[str, Any], n: int
) -> bool:
    if target_port in (None, "", 0):
        return n == port
    if isinstance(target_port, int):
        return n == target_port
    return found.get("name") == target_port


def _custom(
    spec: ServiceSpec, side: Literal["apex", "primary", "canary"]
) -> tuple[dict[str, str], dict[str, str]]:
    """The user's ``spec.service.<side>`` labels and annotations."""
    meta = spec.apex if side == "apex" else spec.primary if side == "primary" else spec.canary
    if meta is None:
        return {}, {}
    return dict(meta.labels or {}), dict(meta.annotations or {})


def _kept(key: str, unmanaged: set[str]) -> bool:
    return key in unmanaged or key.startswith(OWN_PREFIX)


def _keep_node_ports(wanted: list[Body], current: list[Body]) -> list[Body]:
    node_ports = {p.get("name"): p.get("nodePort") for p in current if p.get("nodePort")}
    return [
        {**p, "nodePort": node_ports[p["name"]]} if p.get("name") in node_ports else dict(p)
        for p in wanted
    ]


def _normal_ports(ports: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(p.get(k) for k in _PORT_KEYS) for p in ports),
        key=lambda t: (int(t[2] or 0), str(t[0])),
    )
