"""Shared pieces of the metric-provider tests: Flagger's documentation examples, planned."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis import (
    Endpoint,
    MetricQuery,
    MetricSources,
    QueryFailure,
    open_metric_sources,
    plan_queries,
)
from config import load_manifests

HERE = Path(__file__).resolve().parent
DOCS_TEMPLATES = HERE / "flagger_docs_templates.yaml"
DOCS_CANARY = HERE / "flagger_docs_canary.yaml"
DOCS_HEALTHY = HERE / "flagger_docs_healthy.csv"
#: The engine clock's Unix time in these tests.
NOW = 1_800_000_000.0

#: The Secrets the documentation's templates reference (namespace test), with values long and
#: distinctive enough that a leak into a message would be found.
SECRETS: dict[str, dict[str, str]] = {
    "test/datadog": {
        "datadog_api_key": "dd-api-key-0123456789",
        "datadog_application_key": "dd-app-key-9876543210",
    },
    "test/newrelic": {"newrelic_account_id": "1234567", "newrelic_query_key": "NRIQ-querykey42"},
    "test/dynatrace": {"dynatrace_token": "dt0c01.SECRETTOKENVALUE"},
    "test/influx-token": {"token": "influx-token-abcdef", "org": "my-org"},
}


_ENDPOINT_FIELDS = frozenset(f.name for f in dataclasses.fields(Endpoint))


def template_query(**fields: Any) -> MetricQuery:
    """A MetricQuery of ``fields``, where its endpoint's (server, provider_type, headers, secret,
    ...) are given flat, next to the query's own, as a template's ``spec.provider`` lists them."""
    endpoint = {k: v for k, v in fields.items() if k in _ENDPOINT_FIELDS}
    own = {k: v for k, v in fields.items() if k not in _ENDPOINT_FIELDS}
    return MetricQuery(endpoint=Endpoint(**endpoint), **own)


def docs_query(metric: str, *, target: str = "canary") -> MetricQuery:
    """The planned check of the documentation Canary's metric ``metric``."""
    found = load_manifests([DOCS_CANARY, DOCS_TEMPLATES])
    canary = found.canaries[0]
    templates = {(t.metadata.namespace, t.metadata.name): t for t in found.templates}
    queries = plan_queries(
        canary,
        templates,
        provider="kubernetes",
        default_server="http://prometheus.test:9090",
        target="primary" if target == "primary" else "canary",
    )
    return next(q for q in queries if q.metric == metric)


async def fetch_one(
    query: MetricQuery, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> float | QueryFailure:
    found = SECRETS if secrets is None else secrets
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=found.get
    ) as live:
        assert isinstance(live, MetricSources)
        [answer] = await live.fetch([query])
        return answer
