"""The Kubernetes external metrics API (Flagger's ``externalmetrics`` provider).

The query is ``<namespace>/<metricName>?labelSelector=<url-encoded selector>`` (namespace
default ``default``; only the metric name is required), parsed as Flagger parses it. The value
is the first item's ``value`` (a Kubernetes quantity such as ``1500m`` or ``2Ki``) of
``external.metrics.k8s.io/v1beta1``'s ``namespaces/<namespace>/<metricName>`` list; an empty list
is no data.

Where it asks: without ``spec.provider.address``, the cluster the controller runs in, through its
Cluster seam (``KubeApi``: the engine's Kubernetes client and credentials; label selectors of
``key=value`` terms, which is what that seam filters on); with an address, that API server over
HTTPS with the Secret's ``token`` as a bearer token and ``insecureSkipVerify``, the selector sent
as written (as Flagger overrides its rest config). The API serves current values only, so this
provider cannot answer series (a comparative judge or ``record``): that check fails saying so.
``ping`` lists ``kube-system/dummy-metric`` at the address, as Flagger does (through the cluster
there is nothing to check: the controller talks to that API server on every tick).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from analysis._errors import QueryRejected
from analysis.providers._base import Call, MetricProvider, Resource, json_body, no_values

GROUP, VERSION = "external.metrics.k8s.io", "v1beta1"
FORMAT = "<namespace>/<metricName>?labelSelector=<urlencoded label selectors>"
_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)"
)
_EQUALITY = re.compile(r"\s*([A-Za-z0-9._/-]+)\s*==?\s*([A-Za-z0-9._-]*)\s*")


async def _value(call: Call) -> float:
    namespace, metric, selector = parse_query(call.expr)
    items = await _items(call, namespace, metric, selector)
    if not items:
        raise no_values("externalmetrics", f"no external metrics found for {namespace}/{metric}")
    first = items[0] if isinstance(items[0], dict) else {}
    return quantity(first.get("value"))


async def _ping(call: Call) -> None:
    if not call.address:
        # The controller's own API server answers every tick already, and a dummy metric is not
        # one the (per-metric) RBAC of config/deploy/metric-providers lets it list.
        return
    await _items(call, "kube-system", "dummy-metric", "")


async def _items(call: Call, namespace: str, metric: str, selector: str) -> list[Any]:
    if call.address:
        headers = call.headers
        token = call.credentials.get("token")
        if token:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {token}"
        response = await call.http.send(
            "externalmetrics",
            "GET",
            f"{call.address.rstrip('/')}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{metric}",
            insecure=call.query.endpoint.insecure_skip_verify,
            params={"labelSelector": selector} if selector else None,
            headers=headers,
        )
        body = json_body(response, "externalmetrics")
        items = body.get("items") if isinstance(body, dict) else None
        return items if isinstance(items, list) else []
    if call.kube is None:
        raise QueryRejected(
            "externalmetrics needs the cluster (canary-engine run) or spec.provider.address"
        )
    resource: Resource = (GROUP, VERSION, metric, "ExternalMetricValue")
    return await call.kube.list(resource, namespace, equality_labels(selector))


def parse_query(query: str) -> tuple[str, str, str]:
    """(namespace, metric name, raw label selector) of a query, as Flagger parses it."""
    parsed = urlsplit("dummy:///" + query.strip())
    parts = parsed.path.removeprefix("/").split("/")
    if len(parts) > 2:
        raise QueryRejected(
            f"malformed query string, too many slashes, expected {FORMAT}, got {query.strip()!r}"
        )
    namespace = parts[0] if len(parts) == 2 and parts[0] else "default"
    metric = parts[-1]
    if not metric:
        raise QueryRejected(f"metric name cannot be empty; expected {FORMAT}")
    selector = (parse_qs(parsed.query).get("labelSelector") or [""])[0]
    return namespace, metric, selector


def equality_labels(selector: str) -> dict[str, str]:
    """``a=b,c==d`` as a mapping; QueryRejected for set-based or negated terms, which the
    cluster seam cannot filter on."""
    labels: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = _EQUALITY.fullmatch(term)
        if match is None:
            raise QueryRejected(
                f"labelSelector term {term!r}: only key=value terms are supported when the "
                "external metrics API is read through the cluster; set spec.provider.address "
                "to send the selector as written"
            )
        labels[match.group(1)] = match.group(2)
    return labels


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``"1500m"``, ``"2Ki"``, ``"1e3"``, or a number) as a float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QueryRejected(f"externalmetrics answered a value that is not a quantity: {value!r}")
    try:
        return float(Decimal(match.group(1)) * _SUFFIXES[match.group(2)])
    except InvalidOperation:
        raise QueryRejected(f"externalmetrics answered an invalid quantity: {value!r}") from None


PROVIDER = MetricProvider(
    type="externalmetrics",
    summary="Kubernetes external metrics API",
    secret_keys=(),
    value=_value,
    ping=_ping,
)
