"""Operator commands end to end: ``kubectl canary promote|abort|retry|pause|resume`` against the
controller (``run_controller``) and the Kubernetes API served over HTTP (tests/kubeapi.py).

The commands are sent as a user would: the real command line (``kubectl-canary`` /
``canary-engine``, each run as its own process) with its own token, so the API server's request
log shows exactly what the user needed (one PATCH of the Canary). The world, the controller and
virtual time are those of test_controller_kube.py: while the test's TimeKeeper is idle, virtual
time stands still, so a command that takes effect while the test merely waits in real time took
effect "at once", not at the next interval.

Checked as a user would: the Canary status (phase, weights, ``status.lastCommand``), the
Deployments, the routes, the Events on the Canary, the alerts a Slack AlertProvider received and
the controller's ``command_handled`` log lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from engine.shell import loop as driver_module
from tests.e2e.test_controller_kube import (
    NAME,
    NS,
    V1,
    V2,
    World,
    alive,
    images,
    open_world,
    start,
    world,
)

__all__ = ["world"]  # the fixture, shared with test_controller_kube.py

pytestmark = pytest.mark.timeout(90)

USER = "alice"
COMMAND = "canary-engine.io/command"
ROOT = Path(__file__).resolve().parents[2]
#: The two command lines, as modules (their console scripts are engine.cli:main and
#: engine.cli.kubectl_canary:main).
CANARY_ENGINE = "engine.cli"
KUBECTL_CANARY = "engine.cli.kubectl_canary"
CANARY_PATH = f"/apis/flagger.app/v1beta1/namespaces/{NS}/canaries/{NAME}"


def seed_with_alerts(w: World) -> None:
    """The seed's webhook-server, alerting every severity to a Slack AlertProvider that posts to
    the fake server's /hooks/slack."""
    w.seed()
    canary = w.canary()
    canary["spec"]["analysis"]["alerts"] = [
        {"name": "team", "severity": "info", "providerRef": {"name": "slack"}}
    ]
    w.api.store.seed(
        canary,
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "slack", "namespace": NS},
            "spec": {"type": "slack", "channel": "deploys", "address": f"{w.prom.url}/hooks/slack"},
        },
    )


def slack_alerts(w: World) -> list[str]:
    return [json.dumps(payload) for name, payload in w.prom.hooks if name == "slack"]


def user_kubeconfig(w: World, namespace: str = "default") -> Path:
    config = w.api.kubeconfig(namespace=namespace)
    config["users"][0]["user"]["token"] = USER
    path = w.dir / f"kubeconfig-{USER}-{namespace}"
    path.write_text(json.dumps(config))
    return path


async def cli(module: str, args: Sequence[str]) -> tuple[int, str, str]:
    """Run a command line as its own process (``python -m MODULE ARGS``) while this loop keeps
    serving the API; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def kubectl(w: World, *args: str) -> tuple[int, str, str]:
    """``kubectl canary ARGS -n staging`` with the user's kubeconfig."""
    config = str(user_kubeconfig(w))
    return await cli(KUBECTL_CANARY, [*args, "-n", NS, "--kubeconfig", config])


async def at_once(done: Callable[[], bool], what: str) -> None:
    """Wait in real time (up to 30 s: the machine may be busy), with virtual time standing still,
    until ``done()``."""
    for _ in range(3000):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not at once: {what}")


def last_command(w: World) -> dict[str, str]:
    return dict(w.status().get("lastCommand") or {})


def command_events(w: World) -> list[str]:
    return [m for m in w.messages() if m.startswith("Command ")]


def user_requests(w: World) -> list[tuple[str, str, str | None]]:
    return [(r.verb, r.resource, r.name) for r in w.api.log if r.authorization == f"Bearer {USER}"]


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's lines, whatever an earlier test configured (``simulate`` filters below
    ``error``): the defaults while capturing, the earlier configuration afterwards."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as lines:
            yield lines
    finally:
        structlog.configure(**saved)


async def progressing_at_15(w: World) -> None:
    await w.time.run_until(lambda: w.phase() == "Initialized")
    await w.set_image(NAME, V2)
    await w.time.run_until(lambda: w.status().get("canaryWeight") == 15)


async def test_promote_steps_at_once_then_promote_full_finishes_the_rollout(world: World) -> None:
    w = world
    seed_with_alerts(w)
    run = await start(w)
    try:
        await progressing_at_15(w)
        queries = len(w.prom.queries)
        before = w.clock.now()
        code, out, err = await kubectl(w, "promote", NAME)
        assert (code, err) == (0, ""), err
        assert out.startswith(f"promote sent to Canary {NS}/{NAME} (command ")
        assert "it was at phase Progressing, canary weight 15" in out
        await at_once(lambda: w.status().get("canaryWeight") == 30, "promote")
        assert w.clock.now() == before  # no virtual time passed: not the next interval
        assert w.routed_weight(NAME) == 30
        assert len(w.prom.queries) == queries  # a command runs no checks
        assert last_command(w)["command"] == "promote"

        code, out, _ = await kubectl(w, "promote", NAME, "--full")
        assert code == 0
        await at_once(lambda: w.phase() == "Promoting", "promote --full")
        assert w.image(f"{NAME}-primary") == V2
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0

    assert w.replicas(NAME) == 0 and w.routed_weight(NAME) == 0
    messages = w.messages()
    step, full = command_events(w)
    assert step.startswith("Command promote (") and step.endswith(
        "for webhook-server.staging: advancing the canary weight from 15 to 30"
    )
    assert full.endswith(
        "for webhook-server.staging: skipping the rest of the analysis, promoting "
        "webhook-server.staging"
    )
    i = messages.index(step)
    assert messages[i + 1] == "Advance webhook-server.staging canary weight 30"
    assert messages[messages.index(full) + 1 :] == [
        "Copying webhook-server.staging template spec to webhook-server-primary.staging",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down webhook-server.staging",
    ]
    alerts = slack_alerts(w)
    assert any(
        "Operator command promote: advancing the canary weight from 15 to 30" in a for a in alerts
    )
    assert any(
        "Operator command promote --full: skipping the rest of the analysis" in a for a in alerts
    )
    # one GET (is an earlier command still unhandled?) and one PATCH per command
    assert user_requests(w) == [("get", "canaries", NAME), ("patch", "canaries", NAME)] * 2
    assert images(w, f"{NAME}-primary") == [V1, V2]


async def test_abort_rolls_back_at_once_and_stays_failed_until_retry(world: World) -> None:
    w = world
    seed_with_alerts(w)
    run = await start(w)
    try:
        await progressing_at_15(w)
        primary_before = w.deployment(f"{NAME}-primary")
        code, _, err = await kubectl(w, "abort", NAME)
        assert code == 0, err
        await at_once(lambda: w.phase() == "Failed", "abort")
        assert w.replicas(NAME) == 0 and w.routed_weight(NAME) == 0
        primary = w.deployment(f"{NAME}-primary")
        assert primary["spec"]["template"] == primary_before["spec"]["template"]
        assert primary["metadata"]["generation"] == primary_before["metadata"]["generation"]
        # it stays there: ten more intervals change nothing
        seen = len(w.messages())
        await w.time.advance(10 * 60)
        assert w.phase() == "Failed" and w.replicas(NAME) == 0
        assert w.messages()[seen:] == []

        code, _, err = await kubectl(w, "retry", NAME)
        assert code == 0, err
        await at_once(lambda: w.phase() == "Progressing", "retry")
        assert w.replicas(NAME) == 2  # scaled up again for the analysis
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0

    assert w.image(f"{NAME}-primary") == V2 and images(w, f"{NAME}-primary") == [V1, V2]
    messages = w.messages()
    abort, retry = command_events(w)
    assert abort.endswith("for webhook-server.staging: rolling back webhook-server.staging")
    i = messages.index(abort)
    assert messages[i + 1 : i + 3] == [
        "Rolling back webhook-server.staging aborted by operator",
        "Canary failed! Scaling down webhook-server.staging",
    ]
    assert retry.endswith("restarting the analysis of webhook-server.staging")
    after = messages[messages.index(retry) + 1 :]
    assert after[:3] == [
        "Starting canary analysis for webhook-server.staging",
        "Pre-rollout check acceptance-test passed",
        "Advance webhook-server.staging canary weight 15",
    ]
    warnings = [e["message"] for e in w.events() if e["type"] == "Warning"]
    assert warnings == messages[i + 1 : i + 3]
    alerts = slack_alerts(w)
    assert any("Operator command abort: rolling back webhook-server.staging" in a for a in alerts)
    assert any("Operator command retry: restarting the analysis" in a for a in alerts)
    assert [s[0] for s in w.statuses[NAME]].count("Failed") == 1


async def test_pause_holds_the_weight_across_a_restart_and_counts_nothing_until_resume(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    seed_with_alerts(w)
    with captured_logs() as lines:
        # a fresh logger: the driver's may have been bound (and cached) by an earlier test
        monkeypatch.setattr(driver_module, "log", structlog.get_logger("canary-engine"))
        w.prom.health = lambda namespace, target: target != NAME  # the canary fails every check
        run = await start(w)
        try:
            await w.time.run_until(lambda: w.phase() == "Initialized")
            await w.set_image(NAME, V2)
            await w.time.run_until(lambda: w.status().get("failedChecks") == 1)
            code, _, err = await kubectl(w, "pause", NAME)
            assert code == 0, err
            await at_once(lambda: bool(w.status().get("pausedAt")), "pause")
            # the pause is in the status: a restarted controller keeps holding
            assert await run.shutdown() == 0
            run = await start(w, identity="canary-engine-restarted")
            queries, seen = len(w.prom.queries), len(w.messages())
            # 11 minutes paused with failing metrics: more intervals than the threshold (5), and
            # past the progress deadline (600 s)
            await w.time.advance(11 * 60, step=10)
            assert w.phase() == "Progressing" and w.status()["failedChecks"] == 1
            assert w.status()["canaryWeight"] == 15 and w.routed_weight(NAME) == 15
            assert len(w.prom.queries) == queries  # no check was even run
            assert w.messages()[seen:] == []

            w.prom.health = lambda namespace, target: True
            code, _, err = await kubectl(w, "resume", NAME)
            assert code == 0, err
            await at_once(lambda: "pausedAt" not in w.status(), "resume")
            assert w.status()["resumedAt"]
            await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
        finally:
            assert await run.shutdown() == 0
    handled = [(e["command"], e["outcome"]) for e in lines if e["event"] == "command_handled"]
    assert handled == [
        ("pause", "holding canary weight 15; no checks are counted until resume"),
        ("resume", "resuming the analysis after 11m00s"),
    ]
    pause, resume = command_events(w)
    assert pause.endswith("holding canary weight 15; no checks are counted until resume")
    assert resume.endswith("resuming the analysis after 11m00s")
    alerts = slack_alerts(w)
    assert any("Operator command pause: holding canary weight 15" in a for a in alerts)
    assert any("Operator command resume: resuming the analysis after 11m00s" in a for a in alerts)


async def test_a_command_sent_while_no_controller_runs_takes_effect_once_across_leaders(
    world: World,
) -> None:
    w = world
    seed_with_alerts(w)
    run = await start(w)
    try:
        await progressing_at_15(w)
    finally:
        assert await run.shutdown() == 0
    # the controller is down (restarting, or between leaders) when the user aborts
    code, _, err = await kubectl(w, "abort", NAME)
    assert code == 0, err
    assert w.phase() == "Progressing"
    # three controllers in turn, each a new leader (Lease handed over), each a fresh process
    for restart in range(3):
        run = await start(w, identity=f"canary-engine-{restart}", leader_elect=True)
        try:
            await w.time.run_until(lambda: w.phase() == "Failed", step=1, also=alive(run))
            # past the next regular tick (interval 60 s + 10 % jitter); steps of 1 s, as the
            # leader-election tests take, so every Lease renewal is answered before virtual time
            # moves past its deadline
            await w.time.advance(70, step=1)
        finally:
            assert await run.shutdown() == 0
    assert len(command_events(w)) == 1
    assert [m for m in w.messages() if m.startswith("Canary failed!")] == [
        "Canary failed! Scaling down webhook-server.staging"
    ]
    assert sum("Operator command abort" in a for a in slack_alerts(w)) == 1
    assert w.image(f"{NAME}-primary") == V1 and w.replicas(NAME) == 0
    # the annotation is still there; the status says it was handled
    annotations = w.canary()["metadata"]["annotations"]
    assert json.loads(annotations["canary-engine.io/command"])["id"] == last_command(w)["id"]


async def test_a_command_never_replaces_one_the_controller_has_not_handled(world: World) -> None:
    # One command slot, handled between two ticks: a second command sent before the first was
    # handled (a tick waiting on a slow webhook, or no controller running) would replace it, and
    # the first would never happen. It is refused (exit 5) unless --replace says so.
    w = world
    seed_with_alerts(w)
    code, _, err = await kubectl(w, "pause", NAME)
    assert code == 0, err
    code, out, err = await kubectl(w, "promote", NAME)
    assert code == 5 and out == ""
    assert f"Canary {NS}/{NAME} holds pause (" in err
    assert "which the controller has not handled yet" in err and "--replace" in err
    assert json.loads(w.canary()["metadata"]["annotations"][COMMAND])["command"] == "pause"
    code, _, err = await kubectl(w, "promote", NAME, "--replace")
    assert code == 0, err
    assert json.loads(w.canary()["metadata"]["annotations"][COMMAND])["command"] == "promote"


async def test_a_user_who_may_only_patch_still_sends_commands(world: World) -> None:
    # The documented patch-only Role: the GET that checks for an unhandled command is refused,
    # and the command is sent unchecked, as one PATCH.
    w = world
    seed_with_alerts(w)
    w.api.fail_next(
        method="GET",
        path=f"/canaries/{NAME}",
        status=403,
        message=f'canaries.flagger.app "{NAME}" is forbidden: User "{USER}" cannot get resource',
        token=USER,
    )
    code, _, err = await kubectl(w, "abort", NAME)
    assert code == 0, err
    assert user_requests(w) == [("get", "canaries", NAME), ("patch", "canaries", NAME)]
    assert json.loads(w.canary()["metadata"]["annotations"][COMMAND])["command"] == "abort"


async def test_a_command_that_does_not_apply_is_reported_once_and_changes_nothing(
    world: World,
) -> None:
    w = world
    seed_with_alerts(w)
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized")
        before = w.status()
        code, out, err = await cli(
            CANARY_ENGINE,
            ["resume", NAME, "--kubeconfig", str(user_kubeconfig(w, namespace=NS))],
        )
        assert code == 0, err
        assert "it was at phase Initialized, canary weight 0" in out
        await at_once(lambda: bool(last_command(w)), "resume")
        await w.time.advance(5 * 60)
    finally:
        assert await run.shutdown() == 0
    after = w.status()
    assert {k: v for k, v in after.items() if k != "lastCommand"} == before
    assert last_command(w)["outcome"] == "ignored: not paused"
    (event,) = [e for e in w.events() if e["message"].startswith("Command ")]
    assert event["type"] == "Warning"
    assert event["message"].endswith("for webhook-server.staging ignored: not paused")


async def test_the_command_line_says_what_went_wrong(tmp_path: Path) -> None:
    async with open_world(tmp_path) as w:
        w.seed()
        code, out, err = await kubectl(w, "promote", "no-such-canary")
        assert (code, out) == (1, "")
        assert "Canary staging/no-such-canary not found" in err
        assert "kubectl get canaries -n staging" in err
        w.api.fail_next(1, method="PATCH", path=CANARY_PATH, status=403, message="forbidden")
        code, _, err = await kubectl(w, "pause", NAME)
        assert code == 4
        assert "pause needs the RBAC verb patch on canaries.flagger.app in namespace staging" in err
        code, _, err = await cli(KUBECTL_CANARY, ["abort", NAME, "--kubeconfig", "/nonexistent"])
        assert code == 4 and "/nonexistent" in err and "Traceback" not in err
        code, _, err = await cli(KUBECTL_CANARY, ["run"])
        assert code == 2 and "run is a server, not a kubectl command" in err
        # a name or namespace the API server could never hold is bad input, refused before any
        # request (".." once became a PATCH of the namespace's collection path)
        before = len(w.api.log)
        for name, namespace in (("..", NS), ("a/b", NS), ("Web", NS), (NAME, "..")):
            code, _, err = await cli(KUBECTL_CANARY, ["abort", name, "-n", namespace])
            assert code == 2 and "is not a" in err, (name, namespace, err)
        assert len(w.api.log) == before
        assert "command" not in (w.canary()["metadata"].get("annotations") or {})


async def test_a_command_tick_that_could_not_record_itself_is_carried_out_again_once(
    world: World,
) -> None:
    """The controller carried the command out (routes moved) but its status write failed, as if
    it had died there: the next tick handles the command again and lands on the same weight, not
    one step further."""
    w = world
    seed_with_alerts(w)
    run = await start(w)
    try:
        await progressing_at_15(w)
        w.api.fail_next(1, method="PATCH", path=f"{CANARY_PATH}/status")
        code, _, err = await kubectl(w, "promote", NAME)
        assert code == 0, err
        await at_once(lambda: w.routed_weight(NAME) == 30, "promote")
        assert w.status()["canaryWeight"] == 15 and not last_command(w)
        await w.time.run_until(lambda: bool(last_command(w)), also=alive(run))
        assert w.status()["canaryWeight"] == 30 and w.routed_weight(NAME) == 30
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    weights = [weight for _, weight, _ in w.statuses[NAME]]
    assert max(weights) == 30 and 45 not in weights
    advances = [m for m in w.messages() if m.startswith("Advance")]
    assert "Advance webhook-server.staging canary weight 45" not in advances
    assert any("could not be written" in m for m in w.messages())
