"""Where a provider reads text as Flagger's Go code reads it: keptn's ``status.value`` through
``strconv.ParseFloat`` and the Prometheus-compatible providers' ``trimQuery`` with RE2's ASCII
``\\s`` (Python's ``float()`` and ``\\s`` accept more)."""

from __future__ import annotations

from typing import Any

import pytest

from analysis._errors import QueryRejected
from analysis.providers._keptn import _metric
from analysis.providers._promcompat import trim_query


class _OneMetric:
    """A KubeApi answering one KeptnMetric with ``value``."""

    def __init__(self, value: str) -> None:
        self._value = value

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any]:
        return {"status": {"value": self._value}}


async def test_keptn_reads_a_value_as_parsefloat_does() -> None:
    assert await _metric(_OneMetric("1.5e2"), "ns", "latency") == 150.0  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1_000", " 5", "5\n", "\u0663", "0x10"])
async def test_keptn_refuses_what_parsefloat_refuses(text: str) -> None:
    with pytest.raises(QueryRejected, match="could not parse value of KeptnMetric ns/latency"):
        await _metric(_OneMetric(text), "ns", "latency")  # type: ignore[arg-type]


def test_trim_query_collapses_only_ascii_whitespace() -> None:
    query = 'sum(rate(x{job="a\u00a0b"}[1m]))\n\t  by (le)\u2003'
    assert trim_query(query) == 'sum(rate(x{job="a\u00a0b"}[1m])) by (le)\u2003'
