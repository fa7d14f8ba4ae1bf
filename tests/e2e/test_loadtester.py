"""`canary-engine loadtester`: flagger-loadtester's HTTP API with a built-in hey.

The load tester runs in-process (and once as `python3 -m engine.cli loadtester`) on 127.0.0.1; the
load goes to a tiny aiohttp target on 127.0.0.1 that records every request. Every run is a few
seconds at most.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from engine.cli import build_parser
from engine.cli.hey import MAX_CONCURRENCY, HeyError, is_hey, parse_hey
from engine.cli.loadtester import LoadTesterOptions, RunningServer, serve_loadtester
from tests.servers import free_port

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


# -------------------------------------------------------------------------------------------
# Fixtures: a target that records requests, the load tester, a client
# -------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Target:
    port: int
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    found = Target(port=0)

    async def handle(request: web.Request) -> web.Response:
        found.seen.append(
            Seen(request.method, request.path, dict(request.headers), await request.read())
        )
        return web.Response(status=500 if request.path == "/fail" else 200, text="ok")

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.port = int(runner.addresses[0][1])
    try:
        yield found
    finally:
        await runner.cleanup()


def _options(**overrides: Any) -> LoadTesterOptions:
    values: dict[str, Any] = {"port": 0, "bind": "127.0.0.1", "max_duration": 30.0}
    return LoadTesterOptions(**(values | overrides))


@pytest.fixture
async def tester() -> AsyncIterator[RunningServer]:
    async with serve_loadtester(_options()) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def _payload(cmd: str | None = None, **metadata: str) -> dict[str, Any]:
    if cmd is not None:
        metadata["cmd"] = cmd
    return {
        "name": "webhook-server",
        "namespace": "staging",
        "phase": "Progressing",
        "checksum": "abc",
        "metadata": metadata,
    }


async def _post(
    client: aiohttp.ClientSession, server: RunningServer, path: str, body: Any
) -> tuple[int, str]:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    async with client.post(f"http://127.0.0.1:{server.port}{path}", data=data) as response:
        return response.status, await response.text()


async def _until(condition: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


# -------------------------------------------------------------------------------------------
# Load
# -------------------------------------------------------------------------------------------


async def test_blocking_hey_loads_the_target_at_the_asked_rate(
    tester: RunningServer, client: aiohttp.ClientSession, target: Target
) -> None:
    # hey's -q is per worker: -q 20 -c 2 is 40 requests/s, so 80 requests in 2 s.
    started = time.monotonic()
    status, text = await _post(
        client,
        tester,
        "/",
        _payload(f"hey -z 2s -q 20 -c 2 {target.url()}", type="blocking"),
    )
    took = time.monotonic() - started
    assert status == 200, text
    report = json.loads(text)
    assert took >= 1.8, "blocking: the answer comes when the run is over"
    assert 60 <= len(target.seen) <= 80, len(target.seen)
    assert report["requests"] == len(target.seen)
    assert 25 <= report["rate_per_second"] <= 41, report
    assert report["status_codes"] == {"200": len(target.seen)}
    assert report["errors"]["total"] == 0
    assert report["stopped"] == "duration"
    assert f"{report['requests']} requests" in report["summary"]
    assert {s.method for s in target.seen} == {"GET"}
    assert all(s.headers["User-Agent"].startswith("hey/") for s in target.seen)


async def test_cmd_answers_at_once_and_the_load_happens_in_the_background(
    tester: RunningServer, client: aiohttp.ClientSession, target: Target
) -> None:
    command = f"hey -z 1s -q 10 -c 1 {target.url('/bg')}"
    started = time.monotonic()
    status, text = await _post(client, tester, "/", _payload(command))  # type defaults to cmd
    assert time.monotonic() - started < 0.5
    assert status == 202, text  # flagger-loadtester answers 202 Accepted
    assert "background" in text
    # Flagger calls the webhook again every interval: an identical run still going is skipped.
    status, text = await _post(client, tester, "/", _payload(command, type="cmd"))
    assert status == 202 and "already running" in text
    await _until(lambda: tester.tester.running == 0, within=5)
    assert 7 <= len(target.seen) <= 10, len(target.seen)
    assert {s.path for s in target.seen} == {"/bg"}


async def test_method_body_headers_and_host_reach_the_target(
    tester: RunningServer, client: aiohttp.ClientSession, target: Target
) -> None:
    command = (
        "hey -n 2 -c 1 -m post -d '{\"test\": 2}' -T application/json "
        "-H 'X-Canary: always' -H 'Cookie: canary=always' -A text/plain "
        f"-host podinfo.test -a user:pa55word {target.url('/echo')}"
    )
    status, text = await _post(client, tester, "/", _payload(command, type="blocking"))
    assert status == 200, text
    assert json.loads(text)["requests"] == 2
    assert len(target.seen) == 2
    for seen in target.seen:
        assert seen.method == "POST"
        assert seen.path == "/echo"
        assert seen.body == b'{"test": 2}'
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["X-Canary"] == "always"
        assert seen.headers["Cookie"] == "canary=always"
        assert seen.headers["Accept"] == "text/plain"
        assert seen.headers["Host"] == "podinfo.test"
        assert seen.headers["Authorization"] == "Basic dXNlcjpwYTU1d29yZA=="
    assert "pa55word" not in text


async def test_a_failing_target_is_counted_as_errors(
    tester: RunningServer, client: aiohttp.ClientSession, target: Target
) -> None:
    status, text = await _post(
        client, tester, "/", _payload(f"hey -n 10 -c 2 {target.url('/fail')}", type="blocking")
    )
    assert status == 200, text  # hey ran; what the target answered is in the report
    report = json.loads(text)
    assert report["requests"] == 10
    assert report["status_codes"] == {"500": 10}
    assert report["errors"]["by_status"] == {"500": 10}
    assert report["errors"]["total"] == 10
    assert "10 errors (10x status 500)" in report["summary"]

    # nothing answers at all: a pre-rollout acceptance test against it must fail (502), as
    # `curl` would; the report still says what happened
    down = f"http://127.0.0.1:{free_port()}/"
    for kind in ("blocking", "bash"):
        status, text = await _post(
            client, tester, "/", _payload(f"hey -n 4 -c 2 -t 2 {down}", type=kind)
        )
        assert status == 502, text
    report = json.loads(text)
    assert report["requests"] == 4
    assert report["errors"]["by_exception"] == {"ClientConnectorError": 4}
    assert "ClientConnectorError" in report["errors"]["examples"]


async def test_a_target_that_never_answers_fails_a_blocking_run_with_its_report(
    tester: RunningServer, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests still in flight when the run is cut off: no answer at all, so 502 with the
    # report (the cut-off used to escape as a cancellation and drop the caller's connection).
    import engine.cli.hey as hey_module

    monkeypatch.setattr(hey_module, "MAX_DRAIN_SECONDS", 0.5)
    held: list[asyncio.StreamWriter] = []

    async def accept_and_stay_silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        status, text = await _post(
            client,
            tester,
            "/",
            _payload(f"hey -z 1s -c 2 -t 0 http://127.0.0.1:{port}/", type="blocking"),
        )
    finally:
        for writer in held:
            writer.close()
        silent.close()
    assert status == 502, text
    report = json.loads(text)
    assert report["stopped"] == "max-duration" and report["cancelled"] == 2


async def test_namespace_regexp_keeps_other_namespaces_out(
    client: aiohttp.ClientSession, target: Target
) -> None:
    # Flagger's -namespace-regexp (Authorizer): a search on the payload's namespace
    import re

    options = _options(namespace_regexp=re.compile("^staging$"))
    async with serve_loadtester(options) as server:
        task = _payload(f"hey -n 1 -c 1 {target.url()}", type="blocking")
        assert (await _post(client, server, "/", task))[0] == 200  # the payload is staging's
        elsewhere = {**task, "namespace": "prod"}
        status, text = await _post(client, server, "/", elsewhere)
        assert (status, text) == (403, "Forbidden")  # Flagger's body (the reason is logged)
        assert (await _post(client, server, "/gate/open", elsewhere))[0] == 403
        assert (await _post(client, server, "/gate/check", elsewhere))[0] == 403
        assert (await _post(client, server, "/gate/open", task))[0] == 202


async def test_shutdown_stops_a_running_background_run(
    client: aiohttp.ClientSession, target: Target
) -> None:
    started = time.monotonic()
    async with serve_loadtester(_options()) as server:
        status, _ = await _post(
            client, server, "/", _payload(f"hey -z 20s -q 5 -c 1 {target.url()}")
        )
        assert status == 202
        await _until(lambda: len(target.seen) >= 2)
        assert server.tester.running == 1
    assert time.monotonic() - started < 5
    assert server.tester.running == 0
    count = len(target.seen)
    await asyncio.sleep(0.5)
    assert len(target.seen) == count, "no load after shutdown"


async def test_a_blocking_run_stops_when_its_caller_goes_away(
    tester: RunningServer, target: Target
) -> None:
    # Flagger gives up after the webhook's timeout: the run must not go on for nobody.
    body = json.dumps(_payload(f"hey -z 20s -q 10 -c 1 {target.url()}", type="blocking"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.6)) as impatient:
        with pytest.raises(TimeoutError):
            await impatient.post(f"http://127.0.0.1:{tester.port}/", data=body)
    await _until(lambda: tester.tester.running == 0, within=3)
    count = len(target.seen)
    await asyncio.sleep(0.5)
    assert len(target.seen) == count


# -------------------------------------------------------------------------------------------
# Gates
# -------------------------------------------------------------------------------------------


async def test_approve_and_halt_gates(tester: RunningServer, client: aiohttp.ClientSession) -> None:
    assert await _post(client, tester, "/gate/approve", _payload()) == (
        200,
        "OK",
    )  # Flagger's /gate/approve body
    assert await _post(client, tester, "/gate/halt", _payload()) == (403, "Forbidden")
    async with client.get(f"http://127.0.0.1:{tester.port}/gate/approve") as response:
        assert response.status == 200


async def test_gate_check_follows_open_and_close_per_canary(
    tester: RunningServer, client: aiohttp.ClientSession
) -> None:
    web_server, runner = _payload(), _payload() | {"name": "claude-runner"}
    assert await _post(client, tester, "/gate/check", web_server) == (403, "Forbidden")
    assert await _post(client, tester, "/gate/open", web_server) == (202, "")  # no body, as Flagger
    assert await _post(client, tester, "/gate/check", web_server) == (200, "Approved")
    assert (await _post(client, tester, "/gate/check", runner))[0] == 403
    assert (await _post(client, tester, "/rollback/check", web_server))[0] == 403
    assert (await _post(client, tester, "/gate/close", web_server))[0] == 202
    assert (await _post(client, tester, "/gate/check", web_server))[0] == 403


async def test_rollback_check_follows_open_and_close_per_canary(
    tester: RunningServer, client: aiohttp.ClientSession
) -> None:
    web_server = _payload()
    other_namespace = _payload() | {"namespace": "production"}
    assert await _post(client, tester, "/rollback/check", web_server) == (403, "Forbidden")
    assert (await _post(client, tester, "/rollback/open", web_server))[0] == 202
    assert await _post(client, tester, "/rollback/check", web_server) == (200, "Approved")
    assert (await _post(client, tester, "/rollback/check", other_namespace))[0] == 403
    assert (await _post(client, tester, "/gate/check", web_server))[0] == 403
    assert (await _post(client, tester, "/rollback/close", web_server))[0] == 202
    assert (await _post(client, tester, "/rollback/check", web_server))[0] == 403


async def test_gate_calls_without_a_canary_answer_as_flaggers(
    tester: RunningServer, client: aiohttp.ClientSession
) -> None:
    # Flagger's gate handlers decode the payload and use "<name>.<namespace>" as it comes: with
    # neither, the canary ".", whose gate starts closed (403) and opens (202) like any other.
    for kind in ("gate", "rollback"):
        assert await _post(client, tester, f"/{kind}/check", {}) == (403, "Forbidden")
        assert await _post(client, tester, f"/{kind}/open", {}) == (202, "")
        assert await _post(client, tester, f"/{kind}/check", {}) == (200, "Approved")
        assert await _post(client, tester, f"/{kind}/check", "null") == (200, "Approved")
        assert await _post(client, tester, f"/{kind}/close", {}) == (202, "")
        assert await _post(client, tester, f"/{kind}/check", {}) == (403, "Forbidden")
    # a name alone is "<name>.": not the canary with that name in some namespace
    assert await _post(client, tester, "/gate/open", {"name": "web"}) == (202, "")
    assert (await _post(client, tester, "/gate/check", {"name": "web", "namespace": "a"}))[0] == 403
    assert await _post(client, tester, "/gate/check", {"name": "web"}) == (200, "Approved")
    # what Flagger's json.Unmarshal refuses is still a 400
    status, text = await _post(client, tester, "/rollback/check", "nope")
    assert status == 400 and "malformed JSON" in text
    status, text = await _post(client, tester, "/gate/open", {"name": 1})
    assert status == 400 and "name must be a string" in text


async def test_a_task_request_with_any_method_is_decoded_as_flaggers_is(
    tester: RunningServer, client: aiohttp.ClientSession
) -> None:
    # Flagger's catch-all handler takes every method and decodes the body: a GET has none, 400
    # (canary-engine's body names the problem; Flagger's is empty).
    for method in ("GET", "PUT", "DELETE"):
        async with client.request(method, f"http://127.0.0.1:{tester.port}/") as response:
            assert response.status == 400, method
            assert "empty body" in await response.text()
    async with client.head(f"http://127.0.0.1:{tester.port}/anything") as response:
        assert response.status == 400


async def test_healthz(tester: RunningServer, client: aiohttp.ClientSession) -> None:
    for method in ("GET", "POST", "HEAD"):  # Flagger's answers OK to any method
        url = f"http://127.0.0.1:{tester.port}/healthz"
        async with client.request(method, url) as response:
            assert response.status == 200, method
            if method != "HEAD":
                assert await response.text() == "OK"


async def test_metrics_serves_the_process_metrics(
    tester: RunningServer, client: aiohttp.ClientSession
) -> None:
    # Flagger's load tester serves Go's process metrics on /metrics; a scrape of it keeps working
    # (before, /metrics was a task path and a GET was refused).
    async with client.get(f"http://127.0.0.1:{tester.port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    assert "python_gc_objects_collected_total" in text
    assert "python_info" in text
    assert "flagger_canary" not in text  # the controller's metrics are not the load tester's


# -------------------------------------------------------------------------------------------
# Refusals: a clear 400, never a traceback
# -------------------------------------------------------------------------------------------

BAD = [
    ("malformed-json", "{", "malformed JSON"),
    ("empty-body", "", "empty body"),
    ("deep-json", "[" * 100_000 + "]" * 100_000, "malformed JSON"),
    ("not-utf8", b'{"metadata": {"cmd": "\xff"}}', "malformed JSON"),
    ("not-an-object", "[1, 2]", "must be a JSON object, got array"),
    ("no-metadata", {"name": "a", "namespace": "b"}, "metadata not found in payload"),
    ("no-cmd", _payload(type="cmd", logCmdOutput="true"), "cmd not found in metadata"),
    ("metadata-not-strings", {"metadata": {"cmd": "hey http://x/", "n": 2}}, "metadata.n"),
    ("name-not-string", {"name": 1, "metadata": {"cmd": "x"}}, "name must be a string"),
    ("not-hey", _payload("curl -s http://podinfo-canary.test/"), "--allow-commands"),
    ("bash-not-hey", _payload("echo hi", type="bash"), "command execution is disabled"),
    ("helm", _payload("helm test x", type="helm"), "task type helm is not supported"),
    ("unknown-type", _payload("hey http://x/", type="bogus"), "unknown task type bogus"),
    # hey commands hey would run, that the built-in hey refuses (its bounds, no shell, no files)
    ("over-max-duration", _payload("hey -z 1h http://x/"), "--max-duration"),
    ("too-many-workers", _payload(f"hey -c {MAX_CONCURRENCY + 1} http://x/"), "hey option -c"),
    ("shell", _payload("hey -z 1s http://x/ | tee out"), "runs no shell"),
    ("body-file", _payload("hey -D /etc/passwd http://x/"), "-D (body from a file)"),
    ("body-file-bash", _payload("hey -D /etc/passwd http://x/", type="bash"), "-D (body"),
]

#: hey command lines hey itself rejects (usage error, exit status 1; Go's flag parser or sh: 2).
INVALID_HEY = [
    ("n-below-c", "hey -n 1 -c 2 http://x/", "-n (1) cannot be less than -c (2)", 1),
    ("n-below-default-c", "hey -n 1 http://x/", "-n (1) cannot be less than -c (50)", 1),
    ("bad-duration", "hey -z 1x http://x/", "hey option -z", 2),
    ("unknown-option", "hey -Y 3 http://x/", "unknown hey option '-Y'", 2),
    ("missing-value", "hey -c", "hey option -c needs a value", 2),
    # Go's flag parser reads -n's value as it goes: the URL is not a number (exit 2)
    ("url-as-value", "hey -c 1 -n http://x/", "hey option -n: expected a whole number", 2),
    ("bad-number", "hey -c two http://x/", "hey option -c: expected a whole number", 2),
    ("zero-workers", "hey -c 0 http://x/", "hey option -c: must be between 1", 1),
    ("no-url", "hey -z 1s", "hey needs the URL", 1),
    ("not-http", "hey ftp://x/", "http:// or https:// URL", 1),
    ("quotes", "hey -H 'X: y http://x/", "cannot split the hey command", 2),
    ("bad-header", "hey -H nocolon http://x/", "expected 'Name: value'", 1),
]


@pytest.mark.parametrize(("body", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_bad_requests_get_a_400_naming_the_problem(
    tester: RunningServer, client: aiohttp.ClientSession, body: Any, message: str
) -> None:
    status, text = await _post(client, tester, "/", body)
    assert status == 400, text
    assert message in text
    assert "Traceback" not in text
    assert tester.tester.running == 0


@pytest.mark.parametrize(
    ("command", "message", "exit_status"),
    [i[1:] for i in INVALID_HEY],
    ids=[i[0] for i in INVALID_HEY],
)
async def test_an_invalid_hey_command_line_fails_as_a_failing_command_does_in_flagger(
    tester: RunningServer,
    client: aiohttp.ClientSession,
    command: str,
    message: str,
    exit_status: int,
) -> None:
    # Flagger queues every cmd task and answers 202 with no body; hey then prints its usage and
    # exits non-zero, which is only logged. Its blocking bash task answers 500 with the error.
    error = f"command {command} failed: "
    with structlog.testing.capture_logs() as lines:
        assert await _post(client, tester, "/", _payload(command)) == (202, "")
    failed = [line for line in lines if line["event"] == "command_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "error", lines
    assert failed[0]["canary"] == "webhook-server.staging"
    assert failed[0]["error"].startswith(error) and message in failed[0]["error"]
    assert failed[0]["error"].endswith(f": exit status {exit_status}")
    for kind in ("bash", "blocking"):
        status, text = await _post(client, tester, "/", _payload(command, type=kind))
        assert status == 500, (kind, text)
        assert text.startswith(error) and message in text, text
        assert text.endswith(f": exit status {exit_status}")
    assert tester.tester.running == 0


# -------------------------------------------------------------------------------------------
# --allow-commands
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [60_000, 65_490])
async def test_a_token_in_a_long_output_is_masked_even_where_the_tail_cuts_it(
    client: aiohttp.ClientSession, padding: int
) -> None:
    # the output keeps its last 64 KiB: cut first, "Bearer " fell off and its token stayed
    token = "abcdefghij0123456789abcdefghij0123456789"
    command = (
        f'echo "Authorization: Bearer {token}"; head -c {padding} /dev/zero | tr "\\0" x; exit 1'
    )
    async with serve_loadtester(_options(allow_commands=True)) as server:
        status, text = await _post(client, server, "/", _payload(command, type="bash"))
    assert status == 500 and "exit status 1" in text
    assert token[:12] not in text and token[-12:] not in text


async def test_a_body_that_never_finishes_arriving_is_given_up(
    tester: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # half a body, then silence: held for ever, a thousand such clients held a gigabyte
    monkeypatch.setattr("engine.cli.loadtester.BODY_READ_SECONDS", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", tester.port)
    writer.write(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b"{" * 100
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)  # read() ends: the server closed it
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5s" in answer


async def test_allow_commands_runs_them_with_bash(
    client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with serve_loadtester(_options(allow_commands=True)) as server:
        status, text = await _post(
            client, server, "/", _payload("printf hello", type="bash", returnCmdOutput="true")
        )
        assert (status, text) == (200, "hello")
        # Flagger's TestServer_HandleNewBashTaskCmdExitZero: 200, no body
        assert await _post(client, server, "/", _payload("printf hi", type="bash")) == (200, "")
        # bash -c, as Flagger's bash task: bashisms work
        status, text = await _post(
            client,
            server,
            "/",
            _payload("[[ 1 == 1 ]] && printf yes", type="bash", returnCmdOutput="true"),
        )
        assert (status, text) == (200, "yes")
        # Flagger's wording: command <cmd> failed: <output>: exit status <n>
        assert await _post(client, server, "/", _payload("false", type="bash")) == (
            500,
            "command false failed: : exit status 1",
        )
        status, text = await _post(client, server, "/", _payload("echo oops; exit 3", type="bash"))
        assert status == 500 and "exit status 3" in text and "oops" in text
        out = tmp_path / "out"
        status, _ = await _post(client, server, "/", _payload(f"echo done > {out}"))
        assert status == 202
        # (the shell creates the file before it writes to it: wait for what it writes)
        await _until(lambda: out.exists() and out.read_text() == "done\n")
        # A child left in the background holding the output open does not hold the answer.
        started = time.monotonic()
        status, text = await _post(client, server, "/", _payload("sleep 30 & echo up", type="bash"))
        assert status == 200 and time.monotonic() - started < 10


async def test_a_bash_command_runs_to_its_end_when_its_caller_goes_away(tmp_path: Path) -> None:
    """Flagger runs a bash task under the load tester's own timeout, not the request's: a
    migration slower than the webhook's timeout is not killed half-way (a hey run stops, above)."""
    marker = tmp_path / "done"
    async with serve_loadtester(_options(allow_commands=True)) as server:
        body = json.dumps(_payload(f"sleep 1.2; touch {marker}", type="bash"))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.4)) as impatient:
            with pytest.raises(TimeoutError):
                await impatient.post(f"http://127.0.0.1:{server.port}/", data=body)
        assert server.tester.running == 1
        await _until(marker.exists, within=5)
        await _until(lambda: server.tester.running == 0, within=3)


async def test_shutdown_stops_a_bash_command_whose_caller_went_away(tmp_path: Path) -> None:
    marker = tmp_path / "done"
    started = time.monotonic()
    async with serve_loadtester(_options(allow_commands=True)) as server:
        body = json.dumps(_payload(f"sleep 20; touch {marker}", type="bash"))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.4)) as impatient:
            with pytest.raises(TimeoutError):
                await impatient.post(f"http://127.0.0.1:{server.port}/", data=body)
    assert time.monotonic() - started < 10
    assert server.tester.running == 0 and not marker.exists()


async def test_a_command_a_signal_ended_reads_as_gos_exit_error(
    client: aiohttp.ClientSession,
) -> None:
    async with serve_loadtester(_options(allow_commands=True)) as server:
        status, text = await _post(client, server, "/", _payload("kill -9 $$", type="bash"))
    assert (status, text) == (500, "command kill -9 $$ failed: : signal: killed")


async def test_commands_stop_at_max_duration(client: aiohttp.ClientSession) -> None:
    async with serve_loadtester(_options(allow_commands=True, max_duration=0.5)) as server:
        started = time.monotonic()
        status, text = await _post(client, server, "/", _payload("sleep 10", type="blocking"))
        assert time.monotonic() - started < 5
        assert status == 500 and "killed after --max-duration" in text


# -------------------------------------------------------------------------------------------
# hey's command line
# -------------------------------------------------------------------------------------------


def test_hey_defaults_are_heys() -> None:
    options = parse_hey("hey http://podinfo-canary.test:9898/", max_duration=600)
    assert (options.requests, options.concurrency, options.qps, options.timeout) == (
        200,
        50,
        0.0,
        20.0,
    )
    assert options.method == "GET" and options.duration is None
    assert dict(options.headers)["Content-Type"] == "text/html"


def test_hey_accepts_go_flag_forms_and_the_seed_command() -> None:
    seed = parse_hey("hey -z 1m -q 10 -c 2 http://webhook-server-canary/", max_duration=600)
    assert (seed.duration, seed.qps, seed.concurrency) == (60.0, 10.0, 2)
    forms = parse_hey(
        "hey --z=1m30s -c=3 -q 2.5 -disable-keepalive -h2 -disable-redirects=false http://x/",
        max_duration=600,
    )
    assert (forms.duration, forms.concurrency, forms.qps) == (90.0, 3, 2.5)
    assert forms.disable_keepalive and not forms.disable_redirects
    assert any("HTTP/2" in note for note in forms.notes)
    assert parse_hey("/usr/local/bin/hey -n 4 -c 2 https://x/", max_duration=1).requests == 4
    assert is_hey("hey -z 1m http://x/") and not is_hey("heyo http://x/")
    with pytest.raises(HeyError, match="longer than the load tester's --max-duration"):
        parse_hey("hey -z 2m http://x/", max_duration=60)


def test_credentials_are_masked_where_the_command_is_shown() -> None:
    command = "hey -a admin:s3cret-pw -H 'Authorization: Bearer tok-123456' http://u:pw12345@x/"
    shown = parse_hey(command, max_duration=60).describe(command)
    for secret in ("s3cret-pw", "tok-123456", "pw12345"):
        assert secret not in shown, shown


# -------------------------------------------------------------------------------------------
# The command line
# -------------------------------------------------------------------------------------------


def test_cli_options_and_their_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["loadtester"])
    assert (args.port, args.allow_commands, args.max_duration) == (8080, False, "1h")
    monkeypatch.setenv("CANARY_ENGINE_ALLOW_COMMANDS", "true")
    monkeypatch.setenv("CANARY_ENGINE_MAX_DURATION", "2m")
    monkeypatch.setenv("CANARY_ENGINE_PORT", "9090")
    monkeypatch.setenv("CANARY_ENGINE_LOG_LEVEL", "debug")
    args = build_parser().parse_args(["loadtester"])
    assert (args.port, args.allow_commands, args.max_duration) == (9090, True, "2m")
    assert args.log_level == "debug"


@pytest.mark.slow
async def test_the_cli_serves_logs_json_and_stops_on_sigterm(
    client: aiohttp.ClientSession, target: Target
) -> None:
    env = os.environ | {"CANARY_ENGINE_MAX_DURATION": "5s"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine.cli",
        "loadtester",
        "--port=0",
        "--bind=127.0.0.1",
        "--log-format=json",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[dict[str, Any]] = []

    async def collect() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": "not-json", "line": raw.decode(errors="replace")})

    collector = asyncio.ensure_future(collect())
    try:

        def event(name: str) -> dict[str, Any] | None:
            return next((line for line in lines if line.get("event") == name), None)

        await _until(lambda: event("loadtester_started") is not None, within=20)
        started = event("loadtester_started")
        assert started is not None and started["max_duration"] == 5.0
        server = RunningServer(tester=None, port=started["port"])  # type: ignore[arg-type]
        async with client.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            assert response.status == 200
        status, text = await _post(
            client, server, "/", _payload(f"hey -n 4 -c 2 {target.url()}", type="blocking")
        )
        assert status == 200, text
        status, text = await _post(client, server, "/", _payload(f"hey -z 10s {target.url()}"))
        assert status == 400 and "--max-duration (5s)" in text
        await _until(lambda: event("hey_finished") is not None)
        finished = event("hey_finished")
        assert finished is not None
        assert finished["requests"] == 4 and finished["level"] == "info"
        assert finished["canary"] == "webhook-server.staging"
        assert finished["errors"]["total"] == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
        await collector
        assert event("loadtester_stopped") is not None
        assert not [line for line in lines if line["event"] == "not-json"], lines
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        collector.cancel()


@pytest.mark.parametrize(
    ("command", "duration", "requests", "qps", "timeout"),
    [
        # hey's own rules (main.go): with -z, -n is ignored, whatever its value; -z 0 is no
        # duration; -q at or below 0 is no limit; -t at or below 0 is no timeout
        ("hey -z 1m -n 0 http://x/", 60.0, None, 0.0, 20.0),
        ("hey -z 0 -n 100 -c 10 http://x/", None, 100, 0.0, 20.0),
        ("hey -q -1 -t -1 http://x/", None, 200, 0.0, 0.0),
        # Go's flag parsing stops at the URL: hey ignores what follows it
        ("hey -c 1 http://x/ -n 5", None, 200, 0.0, 20.0),
        ("hey -c 1 http://x/ -n", None, 200, 0.0, 20.0),
    ],
)
def test_hey_command_lines_hey_runs_are_run(
    command: str, duration: float | None, requests: int | None, qps: float, timeout: float
) -> None:
    from engine.cli.hey import parse_hey

    options = parse_hey(command, max_duration=3600.0)
    assert options.duration == duration
    if requests is not None:
        assert options.requests == requests
    assert (options.qps, options.timeout) == (qps, timeout)
