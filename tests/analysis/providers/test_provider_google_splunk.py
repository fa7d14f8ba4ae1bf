"""Cloud Monitoring (stackdriver) and Splunk (SignalFlow) against answers shaped as documented.

Splunk: respx answers SignalFlow's HTTP execute call with a Server-Sent Events body. Stackdriver:
google-auth really signs a service-account JWT (with a key made here) and exchanges it at a token
endpoint served on 127.0.0.1 that checks the signature and the scope; the Cloud Monitoring call
is answered by respx with ``timeSeries:query``'s JSON shape.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from analysis import FailureKind, QueryFailure, Series
from analysis.providers import _stackdriver
from tests.analysis.providers.providers_testkit import NOW, SECRETS, docs_query, fetch_one
from tests.analysis.providers.test_provider_hosted import _series

SIGNALFLOW = "https://stream.us1.signalfx.com/v2/signalflow/execute"
MONITORING = "https://monitoring.googleapis.com/v3/projects/my-project/timeSeries:query"
SPLUNK_SECRETS = {**SECRETS, "test/splunk": {"sf_token_key": "sf-token-0123456789"}}


def _sse(*events: tuple[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, body in events:
        lines.append(f"event: {name}")
        lines += [f"data: {line}" for line in json.dumps(body, indent=2).splitlines()]
        lines.append("")
    return "\n".join(lines) + "\n"


def _data(tsid: str, t: float, value: float | None) -> tuple[str, dict[str, Any]]:
    return "data", {"data": [{"tsId": tsid, "value": value}], "logicalTimestampMs": int(t * 1000)}


START = ("control-message", {"event": "STREAM_START", "timestampMs": int(NOW * 1000)})
END = ("control-message", {"event": "END_OF_CHANNEL", "timestampMs": int(NOW * 1000)})


@respx.mock
async def test_splunk_runs_the_program_and_reads_the_last_value() -> None:
    route = respx.post(SIGNALFLOW).mock(
        return_value=httpx.Response(
            200,
            text=_sse(START, _data("AAAA", NOW - 120, 99.1), _data("AAAA", NOW - 60, 99.7), END),
            headers={"Content-Type": "text/event-stream"},
        )
    )
    assert await fetch_one(docs_query("splunk success rate"), SPLUNK_SECRETS) == 99.7
    request = route.calls.last.request
    assert request.headers["X-SF-Token"] == "sf-token-0123456789"
    assert request.url.params["start"] == str(int((NOW - 600) * 1000))
    assert request.url.params["stop"] == str(int(NOW * 1000))
    assert request.url.params["immediate"] == "true"
    assert "filter('sf_service', 'podinfo')" in request.content.decode()


@respx.mock
async def test_splunk_two_time_series_are_ambiguous_and_none_is_no_data() -> None:
    route = respx.post(SIGNALFLOW).mock(
        return_value=httpx.Response(
            200, text=_sse(START, _data("AAAA", NOW, 1.0), _data("BBBB", NOW, 2.0), END)
        )
    )
    answer = await fetch_one(docs_query("splunk success rate"), SPLUNK_SECRETS)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.AMBIGUOUS
    route.mock(return_value=httpx.Response(200, text=_sse(START, _data("AAAA", NOW, None), END)))
    answer = await fetch_one(docs_query("splunk success rate"), SPLUNK_SECRETS)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_splunk_program_error_is_rejected_without_the_token() -> None:
    respx.post(SIGNALFLOW).mock(
        return_value=httpx.Response(
            200,
            text=_sse(
                START,
                (
                    "error",
                    {"error": 400, "message": "unknown function dataa, token sf-token-0123456789"},
                ),
            ),
        )
    )
    answer = await fetch_one(docs_query("splunk success rate"), SPLUNK_SECRETS)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert "unknown function dataa" in answer.message
    assert "splunk MetricTemplate success-rate.test" in answer.message
    assert "sf-token-0123456789" not in answer.message


@respx.mock
async def test_splunk_series_asks_for_the_step_resolution() -> None:
    route = respx.post(SIGNALFLOW).mock(
        return_value=httpx.Response(
            200,
            text=_sse(START, _data("AAAA", NOW - 60, 99.0), _data("AAAA", NOW, 98.0), END),
        )
    )
    from analysis import SeriesRequest, open_metric_sources

    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=SPLUNK_SECRETS.get
    ) as live:
        [series] = await live.fetch_series(
            [
                SeriesRequest(
                    query=docs_query("splunk success rate"), start=NOW - 60, end=NOW, step=60
                )
            ]
        )
    assert isinstance(series, Series)
    assert series.values.tolist() == [99.0, 98.0]
    assert route.calls.last.request.url.params["resolution"] == "60000"


# -- Cloud Monitoring ---------------------------------------------------------------------------


class _TokenEndpoint(BaseHTTPRequestHandler):
    public_key: Any = None
    grants: list[dict[str, Any]] = []  # noqa: RUF012 - per-class record of the exchanges

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = parse_qs(self.rfile.read(length).decode())
        header, claims, signature = form["assertion"][0].split(".")
        self.public_key.verify(
            _b64(signature),
            f"{header}.{claims}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )  # raises (500) unless google-auth signed it with the service account's key
        self.grants.append({"grant_type": form["grant_type"][0], **json.loads(_b64(claims))})
        body = json.dumps(
            {"access_token": "ya29.test-access-token", "expires_in": 3600, "token_type": "Bearer"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def service_account() -> Iterator[dict[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    _TokenEndpoint.public_key = key.public_key()
    _TokenEndpoint.grants = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _stackdriver.forget_credentials()
    info = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "flagger@my-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{server.server_port}/token",
    }
    try:
        yield {"project": "my-project", "serviceAccountKey": json.dumps(info)}
    finally:
        server.shutdown()
        server.server_close()
        _stackdriver.forget_credentials()


def _time_series(*points: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "timeSeriesDescriptor": {
            "pointDescriptors": [
                {"key": "value_response_latencies_percentile", "valueType": "DOUBLE"}
            ]
        },
        "timeSeriesData": [
            {
                "labelValues": [],
                "pointData": [
                    {
                        "values": [value],
                        "timeInterval": {"startTime": end, "endTime": end},
                    }
                    for end, value in points
                ],
            }
        ],
    }


@respx.mock
async def test_stackdriver_exchanges_a_signed_jwt_and_queries_mql(
    service_account: dict[str, str],
) -> None:
    route = respx.post(MONITORING).mock(
        return_value=httpx.Response(
            200,
            json=_time_series(
                ("2027-01-15T08:00:00Z", {"doubleValue": 212.5}),
                ("2027-01-15T07:59:00Z", {"doubleValue": 190.0}),
            ),
        )
    )
    secrets = {**SECRETS, "test/gcloud-sa": service_account}
    assert await fetch_one(docs_query("latency p99"), secrets) == 212.5
    assert await fetch_one(docs_query("latency p99"), secrets) == 212.5
    assert len(_TokenEndpoint.grants) == 1  # the token is cached until it expires
    grant = _TokenEndpoint.grants[0]
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grant["scope"] == "https://www.googleapis.com/auth/monitoring.read"
    assert grant["iss"] == "flagger@my-project.iam.gserviceaccount.com"
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer ya29.test-access-token"
    mql = json.loads(request.content)["query"]
    assert "metric.destination_service_name == 'podinfo-canary'" in mql


@respx.mock
async def test_stackdriver_empty_answer_is_no_data_and_int64_values_read(
    service_account: dict[str, str],
) -> None:
    secrets = {**SECRETS, "test/gcloud-sa": service_account}
    route = respx.post(MONITORING).mock(return_value=httpx.Response(200, json={}))
    answer = await fetch_one(docs_query("latency p99"), secrets)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA
    route.mock(
        return_value=httpx.Response(
            200, json=_time_series(("2027-01-15T08:00:00Z", {"int64Value": "42"}))
        )
    )
    assert await fetch_one(docs_query("latency p99"), secrets) == 42.0


@respx.mock
async def test_stackdriver_series_holds_the_points_inside_the_window(
    service_account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.analysis.providers.test_provider_hosted as hosted

    monkeypatch.setattr(hosted, "SECRETS", {**SECRETS, "test/gcloud-sa": service_account})
    respx.post(MONITORING).mock(
        return_value=httpx.Response(
            200,
            json=_time_series(
                ("2027-01-15T08:00:00Z", {"doubleValue": 3.0}),
                ("2027-01-15T07:59:00Z", {"doubleValue": 2.0}),
                ("2027-01-15T07:50:00Z", {"doubleValue": 1.0}),
            ),
        )
    )
    series = await _series("latency p99", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 60, NOW]
    assert series.values.tolist() == [2.0, 3.0]


async def test_stackdriver_bad_key_is_rejected_without_the_key() -> None:
    _stackdriver.forget_credentials()
    secrets = {**SECRETS, "test/gcloud-sa": {"project": "p", "serviceAccountKey": "not json 42"}}
    answer = await fetch_one(docs_query("latency p99"), secrets)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert "serviceAccountKey is not a JSON key" in answer.message
    assert "not json 42" not in answer.message
