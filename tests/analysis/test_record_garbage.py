"""``canary-engine record`` against a Prometheus that answers badly: non-finite values, garbage,
or slowly.

A recording never holds a non-finite value (written as no data, with a warning naming the query
and the time); an answer that is not a matrix of numbers is a ``QueryRejected`` naming the query
and what came back (exit 4 from the command, never a traceback); and ``timeout`` bounds each range
query in total, even against a server that trickles its answer a byte at a time.

A small HTTP server on 127.0.0.1 plays Prometheus (prometheus-api-client talks ``requests``,
which respx cannot mock); it answers raw text so the tests can send what JSON encoders refuse.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from analysis import (
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
    load_recording,
    record,
    write_recording,
)
from analysis._text import redact, url_secrets
from config import parse_canary

START = datetime(2026, 3, 1, 11, 0, 0, tzinfo=UTC)
T0 = int(START.timestamp())
NOW = START + timedelta(hours=1)


@dataclass
class FakePrometheus:
    url: str = ""
    #: The body of every answer (raw JSON text).
    body: str = ""
    #: Seconds between two bytes of the body (0: all at once).
    trickle: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)
    #: The answer's status and content type.
    status: int = 200
    content_type: str = "application/json"


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.seen.append(self.path)
            data = fake.body.encode()
            try:
                self.send_response(fake.status)
                self.send_header("Content-Type", fake.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not fake.trickle:
                    self.wfile.write(data)
                    return
                for i in range(len(data)):
                    if fake.stop.wait(fake.trickle):
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()
        # A request abandoned at its deadline ends once the server stops answering it.
        for worker in threading.enumerate():
            if worker.name == "canary-engine-record-query":
                worker.join(5)


def canary_doc() -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
        },
    }


def matrix_text(*values: str, result_type: str = "matrix") -> str:
    """A one-series range answer whose sample values are the given raw JSON texts."""
    samples = ", ".join(f"[{T0 + 60 * i}, {v}]" for i, v in enumerate(values))
    return (
        f'{{"status": "success", "data": {{"resultType": "{result_type}", "result": '
        f'[{{"metric": {{}}, "values": [{samples}]}}]}}}}'
    )


def answer_text(result: Any, result_type: str = "matrix") -> str:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}})


def run(url: str, *, minutes: int = 2, timeout: float = 30.0) -> Any:
    return record(
        url,
        parse_canary(canary_doc()),
        {},
        provider="istio",
        start=START,
        end=START + timedelta(minutes=minutes),
        step=60.0,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------------------------
# Non-finite values: written as no data, with a warning
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [('"+Inf"', "+Inf"), ('"-Inf"', "-Inf"), ('"1e400"', "+Inf"), ("1e400", "+Inf")],
)
@pytest.mark.parametrize("ext", ["csv", "json"])
def test_a_non_finite_sample_is_written_as_no_data_with_a_warning(
    prom: FakePrometheus, tmp_path: Path, value: str, shown: str, ext: str
) -> None:
    prom.body = matrix_text('"99.5"', value, '"NaN"')
    result = run(prom.url)
    samples = [(0, 99.5), (60, None), (120, None)]
    assert result.series[("canary", "request-success-rate")] == samples
    infinite = [w for w in result.warnings if "non-finite" in w]
    assert len(infinite) == 2  # the canary's query and the primary's
    assert infinite[0].startswith("metric 'request-success-rate' (canary) query ' sum(")
    assert infinite[0].endswith(
        f" returned a non-finite value: {shown} at 60s (2026-03-01T11:01:00Z); recorded as no "
        "data (a live check fails with an error on a non-finite value)"
    )
    assert infinite[1].startswith("metric 'request-success-rate' (primary) query ")
    path = tmp_path / f"rec.{ext}"
    write_recording(path, result)
    text = path.read_text()
    assert "inf" not in text.lower()
    assert load_recording(path).value_at("canary", "request-success-rate", 60) is None


def test_a_warning_lists_the_first_times_and_counts_the_rest(prom: FakePrometheus) -> None:
    prom.body = matrix_text(*(['"+Inf"'] * 8))
    result = run(prom.url, minutes=7)
    assert result.series == {}  # nothing finite: no samples, as for a query without data
    warning = next(w for w in result.warnings if "non-finite" in w)
    assert "+Inf at 0s (2026-03-01T11:00:00Z), +Inf at 60s" in warning
    assert "+Inf at 240s (2026-03-01T11:04:00Z) and 3 more; recorded as no data" in warning
    assert any("the canary query returned no data" in w for w in result.warnings)


# ---------------------------------------------------------------------------------------------
# Garbage: QueryRejected naming the query and what came back
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (matrix_text('"abc"'), f'a sample value that is not a number: [{T0}, "abc"]'),
        (matrix_text("null"), f"a sample value that is not a number: [{T0}, null]"),
        (matrix_text("true"), f"a sample value that is not a number: [{T0}, true]"),
        (matrix_text('{"v": 1}'), f'a sample value that is not a number: [{T0}, {{"v": 1}}]'),
        (
            matrix_text('"1", "2"'),
            f'a malformed sample [{T0}, "1", "2"] where [<time>, "<value>"] is expected',
        ),
        (
            answer_text([{"metric": {}, "values": [[T0]]}]),
            f'a malformed sample [{T0}] where [<time>, "<value>"] is expected',
        ),
        (
            answer_text([{"metric": {}, "values": [["soon", "1"]]}]),
            'a sample time that is not a number: ["soon", "1"]',
        ),
        (
            answer_text([{"metric": {}, "values": [["NaN", "1"]]}]),
            'a sample time that is not a number: ["NaN", "1"]',
        ),
        (
            answer_text([T0, "abc"], result_type="string"),
            f'a result that is not a matrix: [{T0}, "abc"]',
        ),
        (
            answer_text([T0, "1"], result_type="scalar"),
            f'a result that is not a matrix: [{T0}, "1"]',
        ),
        (answer_text("abc"), 'a result that is not a matrix: "abc"'),
        (answer_text({"a": 1}), 'a result that is not a matrix: {"a": 1}'),
        (
            answer_text([{"metric": {}, "values": "abc"}]),
            'a malformed series {"metric": {}, "values": "abc"} where {"metric": {...}, '
            '"values": [[<time>, "<value>"], ...]} is expected',
        ),
        (
            answer_text([{"metric": "pod", "values": []}]),
            'a malformed series {"metric": "pod", "values": []} where',
        ),
        # strings Python reads as numbers and Prometheus' clients do not, as the live check
        (matrix_text('"1_000"'), f'a sample value that is not a number: [{T0}, "1_000"]'),
        (matrix_text('" 5"'), f'a sample value that is not a number: [{T0}, " 5"]'),
        # an instant vector where a range matrix is asked for: not "no data"
        (
            answer_text([{"metric": {}, "value": [T0, "5"]}], result_type="vector"),
            "a result that is not a matrix",
        ),
    ],
)
def test_garbage_is_rejected_naming_the_query_and_what_came_back(
    prom: FakePrometheus, body: str, says: str
) -> None:
    prom.body = body
    with pytest.raises(QueryRejected) as caught:
        run(prom.url)
    message = str(caught.value)
    assert message.startswith("metric 'request-success-rate' (canary) query ' sum(")
    assert f": prometheus {prom.url} answered {says}" in message


def test_a_long_garbage_answer_is_clipped(prom: FakePrometheus) -> None:
    prom.body = matrix_text(json.dumps("x" * 5000))
    with pytest.raises(QueryRejected) as caught:
        run(prom.url)
    answered = str(caught.value).split(" answered ", 1)[1]
    assert len(answered) < 200 and answered.endswith("…")


@pytest.mark.parametrize("body", [matrix_text('"abc"'), answer_text([T0, "abc"], "string")])
def test_the_command_exits_4_without_a_traceback(
    prom: FakePrometheus, tmp_path: Path, body: str
) -> None:
    from engine.cli.record import run_record

    prom.body = body
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    output = tmp_path / "rec.csv"
    args = argparse.Namespace(
        prometheus=prom.url,
        canary=str(canary_file),
        template=[],
        start="-1h",
        end="now",
        step="1m",
        output=str(output),
    )
    err = io.StringIO()
    assert run_record(args, now=lambda: NOW, stderr=err) == 4
    text = err.getvalue()
    assert text.startswith("canary-engine record: metric 'request-success-rate' (canary) query ")
    assert "answered a" in text and "Traceback" not in text
    assert not output.exists()


# ---------------------------------------------------------------------------------------------
# The per-query deadline
# ---------------------------------------------------------------------------------------------


def test_a_trickling_answer_times_out_at_the_total_deadline(prom: FakePrometheus) -> None:
    # Every byte comes well within any read timeout, but the whole answer would take seconds.
    prom.body = matrix_text('"99.5"', '"99.9"')
    prom.trickle = 0.05
    began = time.monotonic()
    with pytest.raises(QueryTimeout) as caught:
        run(prom.url, timeout=0.5)
    elapsed = time.monotonic() - began
    assert elapsed < 2.0
    assert str(caught.value) == (
        "metric 'request-success-rate' (canary) query "
        f"{run_query_text(prom)!r}: prometheus {prom.url} did not answer within 0.5s"
    )
    assert len(prom.seen) == 1  # record stops at the first query that runs out of time


def test_an_answer_within_the_deadline_is_recorded(prom: FakePrometheus) -> None:
    prom.body = matrix_text('"99.5"')
    prom.trickle = 0.001
    result = run(prom.url, minutes=1, timeout=10.0)
    assert result.series[("canary", "request-success-rate")] == [(0, 99.5), (60, None)]


def run_query_text(prom: FakePrometheus) -> str:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(prom.seen[0]).query)["query"][0]


def test_json_nested_too_deep_is_a_clear_error(prom: FakePrometheus) -> None:
    prom.body = (
        '{"status": "success", "data": {"resultType": "matrix", "result": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}"
    )
    with pytest.raises(ProviderUnavailable, match="not usable JSON"):
        run(prom.url)


def test_a_sample_time_beyond_any_grid_is_ignored_not_a_crash(prom: FakePrometheus) -> None:
    prom.body = answer_text([{"metric": {}, "values": [[1e308, "1"], [T0, "99.5"]]}])
    # as many samples as without the out-of-range row
    assert run(prom.url).samples == 6


def test_an_answer_past_the_size_limit_is_refused(
    prom: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("analysis.providers._base.MAX_ANSWER_BYTES", 1000)
    prom.body = matrix_text(*['"99.5"'] * 200)
    with pytest.raises(QueryRejected, match="answered more than"):
        run(prom.url)


def test_a_401_echoing_the_password_as_text_is_masked(prom: FakePrometheus) -> None:
    # the body reached the message as a bytes repr (b'p\\xc3\\xa4\\'ss1'), which no form of the
    # password matched
    password = "pä'ss1-secret"
    prom.status, prom.content_type = 401, "text/plain; charset=utf-8"
    prom.body = f'Unauthorized: "{password}" is wrong'
    host = prom.url.removeprefix("http://")
    url = f"http://user:{quote(password, safe='')}@{host}"
    with pytest.raises(QueryRejected) as caught:
        run(url)
    message = redact(str(caught.value), url_secrets(url))
    assert "HTTP 401" in message and "ss1-secret" not in message


def test_a_redirect_elsewhere_never_takes_the_templates_headers() -> None:
    import requests

    from analysis._record import _guard, _Refused

    answer = requests.Response()
    answer.status_code, answer.url = 302, "http://prometheus.test/api/v1/query_range"
    answer.headers["Location"] = "http://elsewhere.test/api/v1/query_range"
    with pytest.raises(_Refused, match="another origin; not followed"):
        _guard({"X-Api-Key": "sekret"})(answer)
    assert _guard({})(answer) is answer  # nothing of the template's to carry: followed
    answer.headers["Location"] = "/v2/api/v1/query_range"  # the same origin: followed
    assert _guard({"X-Api-Key": "sekret"})(answer) is answer


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            '{"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}',
            "answered status error: bad_data: 1:5: parse error",
        ),
        # a proxy's own shape: an error beside an empty result, which read as no data before
        (
            json.dumps({"status": "error", "error": "upstream down", "data": {"result": []}}),
            "answered status error: upstream down",
        ),
    ],
)
def test_an_error_status_sent_with_http_200_is_an_error_not_an_empty_recording(
    prom: FakePrometheus, body: str, says: str
) -> None:
    prom.body = body
    with pytest.raises(QueryRejected) as caught:
        run(prom.url)
    assert f": prometheus {prom.url} {says}" in str(caught.value)


def test_a_success_answer_whose_labels_say_error_is_recorded(prom: FakePrometheus) -> None:
    prom.body = answer_text(
        [{"metric": {"status": "error"}, "values": [[T0, "5"], [T0 + 60, "6"]]}]
    )
    assert run(prom.url).samples == 6
