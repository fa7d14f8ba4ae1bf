"""Amazon CloudWatch: ``GetMetricData`` (Flagger's ``cloudwatch`` provider).

The template's query is the JSON list of ``MetricDataQuery`` objects Flagger's docs show. It is
sent as ``GetMetricData`` over CloudWatch's AWS JSON 1.0 protocol (``X-Amz-Target:
GraniteServiceVersion20100801.GetMetricData``) to ``https://monitoring.<region>.amazonaws.com``
(``spec.provider.region`` is required; ``address`` overrides the endpoint, e.g. a VPC endpoint),
signed with AWS Signature Version 4 by botocore's ``SigV4Auth`` — no hand-written crypto.
Credentials come from botocore's default chain, as the AWS SDK gives Flagger: environment
variables, web identity (IRSA), shared files, container or instance metadata; CloudWatch
templates have no ``secretRef``.

A value covers the last ten metric intervals with ``MaxDatapoints`` 20 and is, as in Flagger,
the first value of the first result (CloudWatch returns the newest first); none is no data.
Series: the window's ``StartTime`` / ``EndTime``, every timestamp of the first result (the
query's own ``Period`` sets the spacing). ``ping`` sends an empty query: only HTTP 400 (the
request reached CloudWatch and was signed well enough to be parsed) means online, as in Flagger.
"""

from __future__ import annotations

import json
import math
from typing import Any

from analysis._errors import QueryRejected
from analysis._text import clip
from analysis._types import Series
from analysis.providers._base import (
    Call,
    MetricProvider,
    Window,
    json_body,
    make_series,
    no_values,
    number,
    online_if_bad_request,
)

WINDOW_INTERVALS = 10
MAX_DATAPOINTS = 20
_TARGET = "GraniteServiceVersion20100801.GetMetricData"
_CONTENT_TYPE = "application/x-amz-json-1.0"
_cached: list[Any] = []  # botocore's refreshable credentials, resolved once per process


async def _value(call: Call) -> float:
    start = call.now - WINDOW_INTERVALS * call.query.window
    result = await _first_result(call, start, call.now, MAX_DATAPOINTS)
    values = result.get("Values") or []
    if not values:
        raise no_values("cloudwatch", f"the first result holds no value: {result!r:.200}")
    return number(values[0], "cloudwatch", "a value")


async def _series(call: Call, window: Window) -> Series:
    result = await _first_result(call, window.start, window.end, None)
    times = result.get("Timestamps") or []
    values = result.get("Values") or []
    return make_series(
        [
            (number(t, "cloudwatch", "a timestamp"), number(v, "cloudwatch", "a value"))
            for t, v in zip(times, values, strict=False)
        ]
    )


async def _ping(call: Call) -> None:
    body = {"MetricDataQueries": [], "StartTime": 0, "EndTime": 0}
    await online_if_bad_request(_send(call, body))


async def _first_result(call: Call, start: float, end: float, limit: int | None) -> dict[str, Any]:
    try:
        queries = json.loads(call.expr)
    except json.JSONDecodeError as exc:
        raise QueryRejected(
            f"cloudwatch query is not a JSON list of MetricDataQuery: {exc}"
        ) from None
    if not isinstance(queries, list):
        raise QueryRejected("cloudwatch query must be a JSON list of MetricDataQuery objects")
    body: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": math.floor(start),
        "EndTime": math.ceil(end),
    }
    if limit is not None:
        body["MaxDatapoints"] = limit
    answer = await _send(call, body)
    results = answer.get("MetricDataResults") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise no_values("cloudwatch", f"no MetricDataResults in {clip(str(answer), 200)}")
    return results[0]


async def _send(call: Call, body: dict[str, Any]) -> Any:
    region = call.query.endpoint.region or ""
    if not region:
        raise QueryRejected("cloudwatch needs spec.provider.region (e.g. us-east-1)")
    url = call.address.rstrip("/") if call.address else f"https://monitoring.{region}.amazonaws.com"
    payload = json.dumps(body).encode()
    headers = await _signed_headers(url + "/", region, payload)
    response = await call.http.send(
        "cloudwatch",
        "POST",
        url + "/",
        insecure=call.query.endpoint.insecure_skip_verify,
        headers={**call.headers, **headers},
        content=payload,
    )
    return json_body(response, "cloudwatch")


async def _signed_headers(url: str, region: str, payload: bytes) -> dict[str, str]:
    from botocore.auth import SigV4Auth  # ~100 ms of imports: only when CloudWatch is used
    from botocore.awsrequest import AWSRequest

    credentials = await _frozen_credentials()
    request = AWSRequest(
        method="POST",
        url=url,
        data=payload,
        headers={"Content-Type": _CONTENT_TYPE, "X-Amz-Target": _TARGET},
    )
    SigV4Auth(credentials, "monitoring", region).add_auth(request)
    return {str(k): str(v) for k, v in request.headers.items()}


async def _frozen_credentials() -> Any:
    """botocore's default credential chain (may call instance metadata: off the event loop)."""
    import asyncio  # here, not at the top: `validate` imports this module for its rules only

    if not _cached:  # two first calls racing resolve the chain twice: harmless
        from botocore.session import get_session

        found = await asyncio.to_thread(lambda: get_session().get_credentials())
        if found is None:
            raise QueryRejected(
                "cloudwatch: no AWS credentials found (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, web identity (IRSA), shared files or instance role)"
            )
        _cached[:] = [found]
    return await asyncio.to_thread(_cached[0].get_frozen_credentials)


def forget_credentials() -> None:
    """Drop the cached credential chain (tests that change the environment)."""
    _cached.clear()


PROVIDER = MetricProvider(
    type="cloudwatch",
    summary="Amazon CloudWatch GetMetricData",
    region_required=True,
    value=_value,
    series=_series,
    ping=_ping,
)
