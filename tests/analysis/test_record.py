"""``canary-engine record`` without a real Prometheus: time parsing, the range grid, errors, files.

A small HTTP server on 127.0.0.1 plays Prometheus' ``/api/v1/query_range`` (prometheus-api-client
talks ``requests``, which respx cannot mock), answering from a function of the query.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from analysis import (
    MetricQueryError,
    QueryRejected,
    load_recording,
    parse_step,
    parse_time,
    record,
    write_recording,
)
from config import SpecError, parse_canary
from engine.cli import main

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
START = datetime(2026, 3, 1, 11, 0, 0, tzinfo=UTC)
T0 = START.timestamp()

Answer = Callable[[dict[str, str]], tuple[int, Any]]


class FakePrometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.answer: Answer = lambda params: (200, matrix())
        self.seen: list[dict[str, str]] = []


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    fake: FakePrometheus

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            fake.seen.append(params)
            status, body = fake.answer(params)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakePrometheus(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[T0 + t, v] for t, v in values]}
                for labels, values in series
            ],
        },
    }


def canary_doc(provider: str = "istio", **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "thresholdRange": {"max": 500}},
                ],
                **analysis,
            },
        },
    }


def by_metric(values: dict[str, list[tuple[float, str]]]) -> Answer:
    def answer(params: dict[str, str]) -> tuple[int, Any]:
        query = params["query"]
        kind = "duration" if "histogram_quantile" in query else "rate"
        target = "primary" if "podinfo-primary" in query else "canary"
        found = values.get(f"{target}/{kind}")
        return 200, matrix(({}, found)) if found else matrix()

    return answer


# ---------------------------------------------------------------------------------------------
# Times and steps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-2h", NOW - timedelta(hours=2)),
        ("-1h30m", NOW - timedelta(minutes=90)),
        ("1767225600", datetime(2026, 1, 1, tzinfo=UTC)),
        ("1767225600.5", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "-15", "-15x", "2026-01-01", "1e300", ""])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|duration|plausible"):
        parse_time(text, now=NOW)


def test_parse_step() -> None:
    assert parse_step("30s") == 30.0
    assert parse_step("1m") == 60.0
    assert parse_step("15") == 15.0
    assert parse_step("0.5") == 0.5
    for bad in ("0", "0s", "soon"):
        with pytest.raises(ValueError):
            parse_step(bad)


# ---------------------------------------------------------------------------------------------
# The range grid
# ---------------------------------------------------------------------------------------------


def test_canary_and_primary_on_the_grid_in_the_checks_unit(prom: FakePrometheus) -> None:
    prom.answer = by_metric(
        {
            "canary/rate": [(0, "99.5"), (60, "NaN"), (180, "98")],  # 120 missing
            "canary/duration": [(0, "0.2127"), (60, "0.25"), (120, "0.3"), (180, "+Inf")],
            "primary/rate": [(0, "100"), (60, "100"), (120, "100"), (180, "100")],
        }
    )
    canary = parse_canary(canary_doc("kubernetes"))
    result = record(
        prom.url,
        canary,
        {},
        provider="kubernetes",
        start=START,
        end=START + timedelta(minutes=3),
        step=60.0,
    )
    assert result.series == {
        ("canary", "request-success-rate"): [(0, 99.5), (60, None), (120, None), (180, 98.0)],
        ("canary", "request-duration"): [
            (0, pytest.approx(212.7)),
            (60, 250.0),
            (120, 300.0),
            (180, None),  # +Inf: never written, recorded as no data with a warning
        ],
        ("primary", "request-success-rate"): [(0, 100.0), (60, 100.0), (120, 100.0), (180, 100.0)],
    }
    [infinite, no_primary] = result.warnings
    assert infinite.startswith("metric 'request-duration' (canary) query ")
    assert infinite.endswith(
        " returned a non-finite value: +Inf at 180s (2026-03-01T11:03:00Z); recorded as no data "
        "(a live check fails with an error on a non-finite value)"
    )
    assert no_primary == (
        "metric 'request-duration': no data for the primary (podinfo-primary); no primary "
        "samples recorded"
    )
    assert result.queries == 4
    sent = [p["query"] for p in prom.seen]
    assert sent[0] == canary_queries(canary)[0]  # the query plan_queries renders, unchanged
    assert 'kubernetes_pod_name=~"podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in sent[2]
    assert {(p["start"], p["end"], p["step"]) for p in prom.seen} == {
        (str(int(T0)), str(int(T0) + 180), "60")
    }


def canary_queries(canary: Any) -> list[str]:
    from analysis import plan_queries

    return [
        q.expr or "" for q in plan_queries(canary, {}, provider="kubernetes", default_server="")
    ]


def test_series_at_disjoint_times_merge_but_two_at_once_are_ambiguous(
    prom: FakePrometheus,
) -> None:
    canary = parse_canary(canary_doc())
    prom.answer = lambda params: (
        200,
        matrix(({"pod": "a"}, [(0, "1")]), ({"pod": "b"}, [(60, "2")])),
    )
    result = record(
        prom.url,
        canary,
        {},
        provider="istio",
        start=START,
        end=START + timedelta(minutes=1),
        step=60.0,
    )
    assert result.series[("canary", "request-success-rate")] == [(0, 1.0), (60, 2.0)]
    prom.answer = lambda params: (
        200,
        matrix(({"pod": "a"}, [(0, "1")]), ({"pod": "b"}, [(0, "2")])),
    )
    with pytest.raises(SpecError) as caught:
        record(
            prom.url,
            canary,
            {},
            provider="istio",
            start=START,
            end=START + timedelta(minutes=1),
            step=60.0,
        )
    assert 'query returned 2 series where one value is expected: {pod="a"}, {pod="b"}' in str(
        caught.value
    )


def test_a_metric_without_data_warns(prom: FakePrometheus) -> None:
    canary = parse_canary(canary_doc())
    result = record(
        prom.url,
        canary,
        {},
        provider="istio",
        start=START,
        end=START + timedelta(minutes=5),
        step=60.0,
    )
    assert result.series == {}
    assert result.warnings[0] == (
        "metric 'request-success-rate': the canary query returned no data between "
        "2026-03-01T11:00:00Z and 2026-03-01T11:05:00Z; the recording has no samples for it"
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            QueryRejected,
            "prometheus rejected the query (HTTP 400): parse error at char 3",
        ),
        (503, "down for maintenance", MetricQueryError, "answered HTTP 503: "),
        (200, "<html>", MetricQueryError, "not Prometheus JSON"),
    ],
)
def test_prometheus_errors_name_the_query(
    prom: FakePrometheus, status: int, body: Any, error: type[Exception], text: str
) -> None:
    prom.answer = lambda params: (status, body)
    canary = parse_canary(canary_doc())
    with pytest.raises(error) as caught:
        record(
            prom.url,
            canary,
            {},
            provider="istio",
            start=START,
            end=START + timedelta(minutes=1),
            step=60.0,
        )
    message = str(caught.value)
    assert message.startswith("metric 'request-success-rate' (canary) query ' sum( rate(")
    assert text in message


@pytest.mark.parametrize(
    ("start", "end", "step", "text"),
    [
        (START, START, 60.0, "the range is empty"),
        (START + timedelta(seconds=5), START, 60.0, "must be before --end"),
        (START, START + timedelta(days=30), 60.0, "use a step of at least 236s"),
    ],
)
def test_bad_ranges(start: datetime, end: datetime, step: float, text: str) -> None:
    canary = parse_canary(canary_doc())
    with pytest.raises(SpecError, match=text):
        record("http://127.0.0.1:9", canary, {}, provider="istio", start=start, end=end, step=step)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_written_recordings_load_back(prom: FakePrometheus, tmp_path: Path, ext: str) -> None:
    prom.answer = by_metric(
        {
            "canary/rate": [(0, "99.95"), (60, "NaN"), (120, "1e-7")],
            "canary/duration": [(0, "212"), (60, "+Inf")],
            "primary/rate": [(0, "100")],
        }
    )
    canary = parse_canary(canary_doc())
    result = record(
        prom.url,
        canary,
        {},
        provider="istio",
        start=START,
        end=START + timedelta(minutes=2),
        step=60.0,
    )
    path = tmp_path / f"rec.{ext}"
    write_recording(path, result)
    loaded = load_recording(path)
    assert loaded.keys == set(result.series)
    for (target, metric), samples in result.series.items():
        for t, value in samples:
            assert loaded.value_at(target, metric, t) == value
    if ext == "csv":
        lines = path.read_text().splitlines()
        assert lines[:4] == [
            "time,target,metric,value",
            "0,canary,request-success-rate,99.95",
            "0,canary,request-duration,212",
            "0,primary,request-success-rate,100",
        ]
        assert "60,canary,request-success-rate," in lines
    else:
        doc = json.loads(path.read_text())
        assert doc["version"] == 1
        assert doc["series"][0]["samples"][:2] == [[0, 99.95], [60, None]]


def test_unknown_extension(tmp_path: Path) -> None:
    from analysis import RecordResult

    with pytest.raises(SpecError, match=r"use \.csv or \.json"):
        write_recording(tmp_path / "out.txt", RecordResult(start=START, end=START, step=60.0))


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_record_writes_and_shows_progress_on_a_terminal(
    prom: FakePrometheus, tmp_path: Path
) -> None:
    from engine.cli.record import run_record

    prom.answer = by_metric({"canary/rate": [(0, "99.9")], "canary/duration": [(0, "120")]})
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    output = tmp_path / "rec.csv"
    args = _args(prom.url, canary_file, output, start="-1h", end="now", step="1m")
    err = Tty()
    assert run_record(args, now=lambda: NOW, stderr=err) == 0
    text = err.getvalue()
    # tqdm's bar, redrawn in place, ends on the last query at 4/4 with a newline.
    assert "request-success-rate (canary)" in text and "1/4" in text
    assert "request-duration (primary)" in text and "4/4" in text
    bar_end = text.index("4/4")
    assert "\r" in text[:bar_end] and "\n" in text[bar_end:]
    assert f"wrote 122 samples in 2 series (4 range queries, step 60s) to {output}" in text
    assert "warning: metric 'request-success-rate': no data for the primary" in text
    assert load_recording(output).value_at("canary", "request-duration", 0) == 120.0


def test_the_step_defaults_to_the_analysis_interval(prom: FakePrometheus, tmp_path: Path) -> None:
    from engine.cli.record import run_record

    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc(interval="30s")))
    args = _args(prom.url, canary_file, tmp_path / "rec.json", start="-5m", end="now")
    err = io.StringIO()
    assert run_record(args, now=lambda: NOW, stderr=err) == 0
    assert {p["step"] for p in prom.seen} == {"30"}
    assert "\r" not in err.getvalue()  # no progress when stderr is not a terminal


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"prometheus": None}, "--prometheus URL: is required"),
        ({"start": "yesterday"}, "--start: 'yesterday' is not a time"),
        ({"step": "fast"}, "--step:"),
        ({"output": "rec.txt"}, "-o: rec.txt: the file name must end in .csv or .json"),
        ({"canary": "/nonexistent.yaml"}, "file not found"),
        ({"end": "-2h"}, "the range is empty"),
    ],
)
def test_bad_input_exits_2(
    prom: FakePrometheus, tmp_path: Path, change: dict[str, Any], text: str
) -> None:
    from engine.cli.record import run_record

    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    args = _args(prom.url, canary_file, tmp_path / "rec.csv", start="-1h", end="now")
    for key, value in change.items():
        setattr(args, key, value)
    err = io.StringIO()
    assert run_record(args, now=lambda: NOW, stderr=err) == 2
    assert text in err.getvalue()
    assert prom.seen == []


def test_a_missing_template_exits_2(prom: FakePrometheus, tmp_path: Path) -> None:
    from engine.cli.record import run_record

    doc = canary_doc()
    doc["spec"]["analysis"]["metrics"].append({"name": "errors", "templateRef": {"name": "err"}})
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(doc))
    args = _args(prom.url, canary_file, tmp_path / "rec.csv", start="-1h", end="now")
    err = io.StringIO()
    assert run_record(args, now=lambda: NOW, stderr=err) == 2
    assert "MetricTemplate test/err is not in the --canary file or any --template file" in (
        err.getvalue()
    )


def test_templates_are_recorded_with_their_headers(prom: FakePrometheus, tmp_path: Path) -> None:
    from engine.cli.record import run_record

    doc = canary_doc()
    doc["spec"]["analysis"]["metrics"] = [
        {"name": "errors", "templateRef": {"name": "err"}, "thresholdRange": {"max": 1}}
    ]
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "err", "namespace": "test"},
        "spec": {
            "provider": {"type": "prometheus", "address": "http://in-cluster:9090"},
            "query": 'sum(rate(errors{app="{{ target }}"}[{{ interval }}]))',
        },
    }
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(doc))
    template_file = tmp_path / "template.yaml"
    template_file.write_text(yaml.safe_dump(template))
    prom.answer = lambda params: (200, matrix(({}, [(0, "0.5")])))
    args = _args(prom.url, canary_file, tmp_path / "rec.csv", start="-1h", end="now")
    args.template = [str(template_file)]
    assert run_record(args, now=lambda: NOW, stderr=io.StringIO()) == 0
    assert [p["query"] for p in prom.seen] == [
        'sum(rate(errors{app="podinfo"}[1m]))',
        'sum(rate(errors{app="podinfo-primary"}[1m]))',
    ]


def test_the_cli_accepts_times_before_now_after_a_space(
    prom: FakePrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    prom.answer = by_metric({"canary/rate": [(0, "99.9")]})
    argv = ["record", "--prometheus", prom.url, "--canary", str(canary_file)]
    argv += ["--start", "-15m", "--end", "-5m", "--step", "5m", "-o", str(tmp_path / "r.csv")]
    assert main(argv) == 0, capsys.readouterr().err
    [first, *_] = prom.seen
    assert int(first["end"]) - int(first["start"]) == 600


def test_the_mesh_provider_can_come_from_the_environment(
    prom: FakePrometheus,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Canary without ``spec.provider`` is recorded with CANARY_ENGINE_MESH_PROVIDER's
    builtin queries, as ``--mesh-provider`` would (the parser reads the variable)."""
    doc = canary_doc()
    del doc["spec"]["provider"]
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(doc))
    prom.answer = by_metric({"canary/rate": [(0, "99.9")]})
    monkeypatch.setenv("CANARY_ENGINE_MESH_PROVIDER", "istio")
    argv = ["record", "--prometheus", prom.url, "--canary", str(canary_file)]
    argv += ["--start", "-15m", "--end", "-5m", "--step", "5m", "-o", str(tmp_path / "r.csv")]
    assert main(argv) == 0, capsys.readouterr().err
    assert prom.seen and all("istio_request" in p["query"] for p in prom.seen)


def test_an_unreachable_prometheus_exits_4(tmp_path: Path) -> None:
    from engine.cli.record import run_record

    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    args = _args("http://127.0.0.1:9", canary_file, tmp_path / "rec.csv", start="-1h", end="now")
    err = io.StringIO()
    assert run_record(args, now=lambda: NOW, stderr=err) == 4
    assert "canary-engine record: metric 'request-success-rate' (canary) query" in err.getvalue()
    assert "prometheus http://127.0.0.1:9 unreachable" in err.getvalue()
    assert not (tmp_path / "rec.csv").exists()


def _args(url: str, canary: Path, output: Path, **times: str) -> Any:
    import argparse

    return argparse.Namespace(
        prometheus=url,
        canary=str(canary),
        template=[],
        start=times.get("start"),
        end=times.get("end"),
        step=times.get("step"),
        output=str(output),
    )


def test_record_reads_the_builtin_queries_of_the_mesh_behind_an_smi_provider(
    prom: FakePrometheus, tmp_path: Path
) -> None:
    """``provider: smi:v1alpha3:linkerd`` records linkerd's builtin queries, as the controller
    runs them (the router's module names the query set)."""
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc("smi:v1alpha3:linkerd")))
    out = tmp_path / "rec.csv"
    code = main(
        [
            "record",
            "--prometheus",
            prom.url,
            "--canary",
            str(canary_file),
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(minutes=5)).isoformat(),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    queries = [p.get("query", "") for p in prom.seen]
    assert queries and all("response_total" in q or "response_latency" in q for q in queries)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "Invalid IPv6 URL"),  # the client library raised ValueError: a traceback
        ("http://127.0.0.1:99999", "Port out of range 0-65535"),
        ("http://user:s3cret@127.0.0.1:-1", "Port could not be cast to integer value as '-1'"),
        ("prometheus:9090", "expected http:// or https://"),
    ],
)
def test_a_prometheus_url_no_request_can_go_to_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, reason: str
) -> None:
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump(canary_doc()))
    argv = ["record", "--prometheus", url, "--canary", str(canary_file)]
    argv += ["--start", "-15m", "--end", "-5m", "-o", str(tmp_path / "r.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--prometheus URL: " in err and f"is not a valid URL: {reason}" in err, err
    assert "s3cret" not in err
