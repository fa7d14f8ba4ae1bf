"""Keptn: KeptnMetric values and Keptn Analyses (Flagger's ``keptn`` provider).

The query is ``<keptnmetric|analysis>/<namespace>/<name>[/<duration>[/<key=value;...>]]``,
lower-cased and trimmed as Flagger does. ``keptnmetric`` reads ``status.value`` of the
``metrics.keptn.sh/v1beta1`` KeptnMetric (a number in a string). ``analysis`` creates an
Analysis ``<name>-<6 random hex>`` for the AnalysisDefinition ``<name>`` over the ``recent``
duration (default ``1m``) with the arguments, polls it every second (on the engine's clock) until
``status.state`` is ``Completed`` — then 1 when ``status.pass``, else 0 — for at most 10 s, and
deletes it afterwards, as Flagger does. Both go through the cluster the controller runs in (its
Cluster seam); there is no address or Secret. Keptn keeps no history a query could read, so this
provider cannot answer series. ``ping`` is always fine, as in Flagger (Keptn's availability is
not checked).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from analysis._errors import QueryRejected, QueryTimeout
from analysis._numbers import parse_number_text
from analysis.providers._base import Call, KubeApi, MetricProvider, Resource

GROUP, VERSION = "metrics.keptn.sh", "v1beta1"
KEPTN_METRIC: Resource = (GROUP, VERSION, "keptnmetrics", "KeptnMetric")
ANALYSIS: Resource = (GROUP, VERSION, "analyses", "Analysis")
#: Flagger's time for Keptn to evaluate an Analysis (seconds) and its polling period.
ANALYSIS_TIMEOUT = 10.0
POLL_SECONDS = 1.0
FORMAT = "<keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>"


async def _value(call: Call) -> float:
    kind, namespace, name, duration, arguments = parse_query(call.expr)
    kube = _kube(call)
    if kind == "keptnmetric":
        return await _metric(kube, namespace, name)
    return await _analysis(call, kube, namespace, name, duration, arguments)


async def _ping(call: Call) -> None:
    return None


async def _metric(kube: KubeApi, namespace: str, name: str) -> float:
    body = await kube.get(KEPTN_METRIC, namespace, name)
    if body is None:
        raise QueryRejected(f"could not retrieve KeptnMetric {namespace}/{name}: not found")
    value = (body.get("status") or {}).get("value")
    if not isinstance(value, str):
        raise QueryRejected(
            f"could not retrieve KeptnMetric - no value found in resource {namespace}/{name}"
        )
    try:
        # as Go's strconv.ParseFloat reads it (Python's float() also takes "1_000", " 5")
        return parse_number_text(value)
    except ValueError:
        raise QueryRejected(
            f"could not parse value of KeptnMetric {namespace}/{name} to float: {value!r}"
        ) from None


async def _analysis(
    call: Call,
    kube: KubeApi,
    namespace: str,
    name: str,
    duration: str,
    arguments: dict[str, str],
) -> float:
    created = await kube.create(
        ANALYSIS,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Analysis",
            "metadata": {"name": f"{name}-{uuid.uuid4().hex[:6]}", "namespace": namespace},
            "spec": {
                "analysisDefinition": {"name": name},
                "timeframe": {"recent": duration},
                "args": arguments,
            },
        },
    )
    created_name = str((created.get("metadata") or {}).get("name", ""))
    try:
        waited = 0.0
        while waited < ANALYSIS_TIMEOUT:
            await call.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
            body = await kube.get(ANALYSIS, namespace, created_name)
            status: dict[str, Any] = (body or {}).get("status") or {}
            if status.get("state") == "Completed" and isinstance(status.get("pass"), bool):
                return 1.0 if status["pass"] else 0.0
        raise QueryTimeout(
            "encountered timeout while waiting for Keptn Analysis "
            f"{namespace}/{name} to be finished"
        )
    finally:
        with contextlib.suppress(Exception):  # Flagger only logs a failed clean-up too
            await kube.delete(ANALYSIS, namespace, created_name)


def parse_query(query: str) -> tuple[str, str, str, str, dict[str, str]]:
    """(kind, namespace, name, duration, arguments) as Flagger parses the query."""
    parts = query.lower().removesuffix("\n").strip().split("/")
    if len(parts) < 3:
        raise QueryRejected(f"unexpected query format. query must be in the format {FORMAT}")
    if parts[0] in ("keptnmetric", "keptnmetrics"):
        kind = "keptnmetric"
    elif parts[0] in ("analysis", "analyses"):
        kind = "analysis"
    else:
        raise QueryRejected(
            "unexpected resource kind provided in the query. must be one of: "
            "['keptnmetric', 'analysis']"
        )
    duration = parts[3] if len(parts) >= 4 else "1m"
    arguments: dict[str, str] = {}
    if len(parts) >= 5:
        for pair in parts[4].split(";"):
            key_value = pair.split("=")
            if len(key_value) == 2:
                arguments[key_value[0]] = key_value[1]
    return kind, parts[1], parts[2], duration, arguments


def _kube(call: Call) -> KubeApi:
    if call.kube is None:
        raise QueryRejected("keptn reads Keptn resources through the cluster (canary-engine run)")
    return call.kube


PROVIDER = MetricProvider(
    type="keptn",
    summary="Keptn KeptnMetric / Analysis resources",
    value=_value,
    ping=_ping,
    deadline=ANALYSIS_TIMEOUT + 5.0,
)
