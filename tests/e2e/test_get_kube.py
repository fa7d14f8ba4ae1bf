"""``canary-engine get`` end to end, and the status fields it reads, against the Kubernetes API
test server (``tests/kubeapi.py``) over real HTTP.

The controller (``run_controller``, as in ``test_controller_kube.py``, whose world and helpers
this reuses) drives the seed's webhook-server into the middle of an analysis with one failed
check; ``canary-engine get`` then runs as a real process (``python -m engine.cli``, stdout a pipe,
or a pseudo-terminal for the colour test) against the same server, as a user would run it.
``--watch`` is driven by patching the Canary's status and creating Events over HTTP, as the
controller (or kubectl) would.

Secrets: the webhook URLs carry a password and a token, and an Event written by someone else
quotes a URL with a password; none of them may appear in the status or in anything get prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from analysis._text import MASK
from tests.deploy.test_manifests import _canary, _crd_errors
from tests.e2e.test_controller_kube import (
    NAME,
    NS,
    V2,
    World,
    alive,
    open_world,
    start,
)
from tests.kubeapi import FakeKubeApi, serve_kube_api

pytestmark = pytest.mark.timeout(60)

Body = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-pa55word"
TOKEN = "s3cr3t-t0ken-4711"
OTHER_PASSWORD = "flagger-wrote-this-pw"
SECRETS = (PASSWORD, TOKEN, OTHER_PASSWORD)
MERGE = "application/merge-patch+json"

# ---------------------------------------------------------------------------- helpers


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as w:
        yield w


def with_secret_hooks(w: World) -> None:
    """The seed's webhooks, their URLs carrying a password and a token."""
    body = w.canary()
    for hook in body["spec"]["analysis"]["webhooks"]:
        url = hook["url"].replace("http://", f"http://tester:{PASSWORD}@")
        hook["url"] = f"{url}?token={TOKEN}"
    w.api.store.put(body)


def foreign_event(namespace: str, name: str, message: str, *, rv_name: str = "x") -> Body:
    """An Event about the Canary that canary-engine did not write (Flagger, a person...)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{rv_name}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": name,
            "namespace": namespace,  # kube-apiserver: must match the Event's (legacyValidateEvent)
        },
        "reason": "Synced",
        "type": "Warning",
        "message": message,
        "firstTimestamp": "2026-01-01T00:04:00Z",
        "lastTimestamp": "2026-01-01T00:04:00Z",
        "count": 1,
    }


async def mid_analysis(w: World) -> None:
    """Seed webhook-server, roll out V2 to weight 15, fail one check, stop the controller."""
    w.seed()
    with_secret_hooks(w)
    run = await start(w)
    await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
    await w.set_image(NAME, V2)
    await w.time.run_until(lambda: w.status().get("canaryWeight") == 15, also=alive(run))
    w.prom.health = lambda namespace, target: target != NAME  # the canary answers badly
    await w.time.run_until(lambda: w.status().get("failedChecks") == 1, also=alive(run))
    assert await run.shutdown() == 0
    w.api.store.put(
        foreign_event(NS, NAME, f"webhook http://admin:{OTHER_PASSWORD}@tester.test/ failed")
    )


async def canary_engine(
    *args: str, env: dict[str, str] | None = None, stdout: int | None = None
) -> asyncio.subprocess.Process:
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environment.update(env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine.cli",
        *args,
        stdout=asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
        cwd=ROOT,
    )


async def get(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await canary_engine("get", *args, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def rows(text: str) -> list[list[str]]:
    """Table lines split into cells (two or more spaces apart)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------- the controller


async def test_the_controller_records_checks_webhooks_and_the_achieved_split(world: World) -> None:
    w = world
    await mid_analysis(w)
    status = w.status()
    last = status["lastAnalysis"]
    assert [
        (c["metric"], c["target"], c["value"], c.get("min"), c.get("max"), c["verdict"])
        for c in last["checks"]
    ] == [
        ("request-success-rate", "canary", 50.0, 95.0, None, "fail"),
        ("request-duration", "canary", 120.0, None, 500.0, "pass"),
        ("error-rate", "canary", 50.0, None, 5.0, "fail"),
    ]
    # The pre-rollout hook answered on an earlier tick than load-test's last call: both kept.
    assert [(h["name"], h["type"], h["ok"]) for h in last["webhooks"]] == [
        ("acceptance-test", "pre-rollout", True),
        ("load-test", "rollout", True),
    ]
    assert last["time"] == status["lastTransitionTime"]  # the tick that counted the failure
    # The mesh-free router splits by pods: the split the replicas give, beside the stepped 15.
    assert status["canaryWeight"] == 15
    pods = (w.replicas(f"{NAME}-primary"), w.replicas(NAME))
    assert pods == (2, 1)
    assert status["achievedWeights"] == {"canary": 33, "primary": 67}
    assert _crd_errors({**_canary(), "status": status}) == []
    text = json.dumps(w.canary())
    assert TOKEN in text and PASSWORD in text  # the spec holds them: the test means something
    assert not [s for s in SECRETS if s in json.dumps(status)]


async def test_a_tick_that_only_moves_a_timestamp_writes_nothing(world: World) -> None:
    """A Canary held at a closed confirm-promotion gate is checked every interval with the same
    results: the status is not rewritten each time just to move lastAnalysis.time."""
    w = world
    w.seed()
    body = w.canary()
    body["spec"]["analysis"]["webhooks"].append(
        {"name": "gate", "type": "confirm-promotion", "url": f"{w.prom.url}/closed"}
    )
    w.api.store.put(body)
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() == "WaitingPromotion", also=alive(run))
        await w.time.advance(120)
        held = w.status()
        w.api.reset_counts()
        await w.time.advance(5 * 60)
        assert w.api.count("patch", "canaries") == 0
        assert w.status() == held
        gate = [h for h in held["lastAnalysis"]["webhooks"] if h["name"] == "gate"]
        assert gate and gate[0]["ok"] is False
    finally:
        assert await run.shutdown() == 0


# ---------------------------------------------------------------------------- get


async def test_get_prints_the_canary_mid_analysis_plain_when_piped(world: World) -> None:
    w = world
    await mid_analysis(w)
    code, out, err = await get(NAME, "-n", NS, "--kubeconfig", str(w.kubeconfig("kubectl")))
    assert (code, err) == (0, "")
    assert "\x1b" not in out  # piped: no colour, no cursor movement
    table = rows(out)
    assert ["Canary staging/webhook-server"] in table
    assert ["Phase:", "Progressing", "New revision detected, progressing canary analysis."] in (
        table
    )
    assert [
        "Weight:",
        "canary 15 / primary 85",
        "(step 15, max 30)",
        "achieved canary 33 / primary 67",
    ] in table
    assert ["Failed checks: 1 / 5"] in [[" ".join(r)] for r in table]
    assert ["request-success-rate", "canary", "50", ">= 95", "FAIL"] in table
    assert ["request-duration", "canary", "120", "<= 500", "ok"] in table
    assert ["error-rate", "canary", "50", "<= 5", "FAIL"] in table
    hooks = [r[:3] for r in table if r[0] in ("acceptance-test", "load-test")]
    assert hooks == [["acceptance-test", "pre-rollout", "ok"], ["load-test", "rollout", "ok"]]
    messages = [r[2] for r in table if len(r) == 3 and r[1] in ("Normal", "Warning")]
    assert messages[-3:] == [
        "Advance webhook-server.staging canary weight 15",
        "Halt webhook-server.staging advancement success rate 50.00% < 95%",
        f"webhook http://admin:{MASK}@tester.test/ failed",
    ]
    assert not [s for s in SECRETS if s in out]


async def test_get_json_is_one_document_with_what_the_table_shows(world: World) -> None:
    w = world
    await mid_analysis(w)
    code, out, err = await get(
        NAME, "-n", NS, "-o", "json", "--kubeconfig", str(w.kubeconfig("kubectl"))
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert {k: doc[k] for k in ("canary", "namespace", "phase", "strategy")} == {
        "canary": NAME,
        "namespace": NS,
        "phase": "Progressing",
        "strategy": "canary",
    }
    assert (doc["canaryWeight"], doc["primaryWeight"], doc["maxWeight"]) == (15, 85, 30)
    assert doc["achievedWeights"] == {"canary": 33, "primary": 67}
    assert (doc["failedChecks"], doc["threshold"], doc["iterations"]) == (1, 5, 0)
    assert [(c["metric"], c["value"], c["verdict"]) for c in doc["lastAnalysis"]["checks"]] == [
        ("request-success-rate", 50.0, "fail"),
        ("request-duration", 120.0, "pass"),
        ("error-rate", 50.0, "fail"),
    ]
    assert doc["events"][-2]["type"] == "Warning"
    assert doc["events"][-2]["message"].startswith("Halt webhook-server.staging advancement")
    assert not [s for s in SECRETS if s in out]


@pytest.mark.skipif(
    not (shutil.which("kubectl") and shutil.which("kubectl-canary")),
    reason="needs kubectl and the kubectl-canary plugin (pip install -e .) on PATH",
)
async def test_kubectl_canary_get_is_the_same_command(world: World) -> None:
    w = world
    await mid_analysis(w)
    config = str(w.kubeconfig("kubectl"))
    _, expected, _ = await get(NAME, "-n", NS, "-o", "json", "--kubeconfig", config)
    kubectl = await asyncio.create_subprocess_exec(
        "kubectl",
        "canary",
        "get",
        NAME,
        "-n",
        NS,
        "-o",
        "json",
        "--kubeconfig",
        config,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(kubectl.communicate(), 30)
    assert (kubectl.returncode, err.decode()) == (0, "")
    assert json.loads(out) == json.loads(expected)


async def test_get_names_a_missing_canary_and_an_unreachable_api(tmp_path: Path) -> None:
    async with serve_kube_api() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        code, out, err = await get("nope", "--kubeconfig", str(config))
        assert (code, out) == (1, "")
        assert err == (  # the context's namespace
            "canary staging/nope not found (kubectl get canaries -n staging lists the Canaries "
            "there; -n picks the namespace)\n"
        )
    code, out, err = await get(NAME, "-n", NS, "--kubeconfig", str(config))  # server gone
    assert (code, out) == (4, "")
    assert err.startswith("canary-engine get: ") and "Traceback" not in err


# ---------------------------------------------------------------------------- get --watch


def stored_canary(api: FakeKubeApi) -> Body:
    """The seed's webhook-server Canary, mid-analysis, as a controller left it."""
    import yaml

    canary = next(
        yaml.safe_load_all((ROOT / "config/deploy/samples/webhook-server.yaml").read_text())
    )
    canary["status"] = {
        "phase": "Progressing",
        "canaryWeight": 15,
        "failedChecks": 1,
        "iterations": 0,
        "lastTransitionTime": "2026-01-01T00:03:00Z",
        "lastAnalysis": {
            "time": "2026-01-01T00:03:00Z",
            "checks": [
                {"metric": "request-success-rate", "target": "canary", "value": 90.5}
                | {"min": 95, "verdict": "fail"}
            ],
            "webhooks": [],
        },
    }
    return api.store.put(canary)


async def patch_status(api: FakeKubeApi, patch: Body) -> None:
    """``kubectl patch canary --subresource=status --type=merge``, over HTTP."""
    url = f"{api.url}/apis/flagger.app/v1beta1/namespaces/{NS}/canaries/{NAME}/status"
    async with (
        aiohttp.ClientSession() as session,
        session.patch(url, data=json.dumps(patch), headers={"Content-Type": MERGE}) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def create_event(api: FakeKubeApi, body: Body) -> None:
    url = f"{api.url}/api/v1/namespaces/{NS}/events"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as answer:
        assert answer.status == 201, await answer.text()


class Output:
    """Reads a running get's output until a line satisfies a condition."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.lines: list[str] = []

    async def until(self, found: Callable[[str], bool], within: float = 15) -> str:
        async with asyncio.timeout(within):
            while True:
                line = (await self.stream.readline()).decode()
                assert line, f"output ended; so far: {self.lines}"
                self.lines.append(line.rstrip("\n"))
                if found(line):
                    return line


@asynccontextmanager
async def watching(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, Output]]:
    proc = await canary_engine("get", "--watch", *args)
    assert proc.stdout is not None
    try:
        yield proc, Output(proc.stdout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_get_watch_prints_again_when_the_status_or_the_events_change(
    tmp_path: Path,
) -> None:
    async with serve_kube_api() as api:
        stored_canary(api)
        config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        async with watching(NAME, "--kubeconfig", str(config)) as (proc, out):
            await out.until(lambda line: line.startswith("Failed checks: 1 / 5"))
            await out.until(lambda line: "request-success-rate" in line)
            await patch_status(
                api,
                {
                    "status": {
                        "failedChecks": 2,
                        "lastAnalysis": {
                            "time": "2026-01-01T00:04:00Z",
                            "checks": [
                                {"metric": "request-success-rate", "target": "canary"}
                                | {"value": 80.25, "min": 95, "verdict": "fail"}
                            ],
                        },
                    }
                },
            )
            await out.until(lambda line: line.startswith("Failed checks: 2 / 5"))
            line = await out.until(lambda line: "request-success-rate" in line)
            assert rows(line)[0][:5] == ["request-success-rate", "canary", "80.25", ">= 95", "FAIL"]
            await create_event(
                api, foreign_event(NS, NAME, f"Rolling back: see http://u:{OTHER_PASSWORD}@x/")
            )
            await out.until(lambda line: f"Rolling back: see http://u:{MASK}@x/" in line)
            # A status write that changes nothing shown prints nothing.
            printed = len(out.lines)
            await patch_status(api, {"status": {"lastAppliedSpec": "changed"}})
            await patch_status(api, {"status": {"phase": "Failed"}})
            await out.until(lambda line: line.startswith("Phase:") and "Failed" in line)
            blocks = [i for i, line in enumerate(out.lines) if line.startswith("Canary ")]
            assert len([i for i in blocks if i >= printed]) == 1
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            _, err = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 130
            assert "Traceback" not in err.decode()
        assert not [s for s in SECRETS if s in "\n".join(out.lines)]


async def test_get_watch_json_prints_one_document_per_change_and_ends_on_deletion(
    tmp_path: Path,
) -> None:
    async with serve_kube_api() as api:
        stored_canary(api)
        config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        async with watching(NAME, "-o", "json", "--kubeconfig", str(config)) as (proc, out):
            first = json.loads(await out.until(lambda line: True))
            assert (first["canaryWeight"], first["failedChecks"]) == (15, 1)
            await patch_status(api, {"status": {"canaryWeight": 30}})
            second = json.loads(await out.until(lambda line: True))
            assert (second["canaryWeight"], second["primaryWeight"]) == (30, 70)
            api.store.remove("canaries.flagger.app", NS, NAME)
            rest, err = await asyncio.wait_for(proc.communicate(), 15)
            assert (proc.returncode, rest, err.decode()) == (
                0,
                b"",
                f"canary {NS}/{NAME} deleted\n",
            )


async def read_terminal(fd: int, until: str) -> str:
    """What a terminal shows until ``until`` appears (or the program's end closes it)."""
    screen = b""
    async with asyncio.timeout(15):
        while until.encode() not in screen:
            try:
                chunk = await asyncio.to_thread(os.read, fd, 65536)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not chunk:
                break
            screen += chunk
    return screen.decode()


@pytest.mark.parametrize("no_color", [False, True])
async def test_get_on_a_terminal_is_coloured_unless_no_color_and_watch_redraws_in_place(
    tmp_path: Path, no_color: bool
) -> None:
    env = {"NO_COLOR": "1"} if no_color else {}
    async with serve_kube_api() as api:
        stored_canary(api)
        config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        leader, follower = pty.openpty()
        try:
            once = await canary_engine(
                "get", NAME, "--kubeconfig", str(config), env=env, stdout=follower
            )
            _, err = await asyncio.wait_for(once.communicate(), 30)
            assert (once.returncode, err) == (0, b"")
            text = await read_terminal(leader, "No events.")
            assert "Failed checks" in text and "\x1b[H" not in text  # one get never clears
            assert ("\x1b[31mFAIL\x1b[0m" in text) is not no_color
            watch = await canary_engine(
                "get", NAME, "-w", "--kubeconfig", str(config), env=env, stdout=follower
            )
            first = await read_terminal(leader, "No events.")
            assert first.startswith("\x1b[H\x1b[2J")  # redrawn in place, not scrolled
            await patch_status(api, {"status": {"failedChecks": 3}})
            second = await read_terminal(leader, "No events.")
            assert second.startswith("\x1b[H\x1b[2J") and "3 / 5" in second
            watch.send_signal(signal.SIGINT)
            await asyncio.wait_for(watch.wait(), 15)
            assert watch.returncode == 130
        finally:
            os.close(follower)
            os.close(leader)
