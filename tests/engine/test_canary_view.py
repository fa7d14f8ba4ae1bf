"""``status.lastAnalysis`` as the driver records it, and ``canary-engine get``'s table and JSON.

Edge cases of what the end-to-end tests (tests/e2e/test_get_kube.py) cannot reach cheaply:
what is kept across ticks, size bounds, redaction, hostile stored status, judged / dry-run /
no-data checks, a spec the controller rejects.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from analysis import CheckKind, CheckResult, HookOutcome, MetricQuery, Verdict
from config import CanaryStatus, CheckRecord, LastAnalysis, Phase, Webhook
from config._last_analysis import MAX_CHECKS, MAX_EXPLANATION
from engine.cli.canary_view import EVENTS_SHOWN, age, build_view, render_table
from engine.cli.get import _follow, _Printer
from engine.shell.clock import RealClock
from engine.shell.last_analysis import record_tick
from traffic import CANARY, ClusterUnavailable, ObjectRef, Routes, Weights

NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
T1, T2 = "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"
PASSWORD = "pa55-w0rd-secret"


def check(metric: str, value: float | None, verdict: Verdict, **more: Any) -> CheckResult:
    query = MetricQuery(canary="staging/web", metric=metric, kind=CheckKind.TEMPLATE)
    more.setdefault("hi", 500.0)
    return CheckResult(query=query, value=value, verdict=verdict, message="", **more)


def hook(name: str, ok: bool, type_: str = "rollout") -> HookOutcome:
    return HookOutcome(Webhook(name=name, url=f"http://u:{PASSWORD}@t/", type=type_), ok, "x")


HOOKS = [Webhook(name="gate", url="http://t/", type="confirm-rollout"), hook("load", True).hook]


def tick(
    old: CanaryStatus,
    new: CanaryStatus | None = None,
    *,
    checks: tuple[CheckResult, ...] = (),
    calls: tuple[HookOutcome, ...] = (),
    routes: Routes | None = None,
    when: str = T2,
) -> CanaryStatus:
    return record_tick(
        old,
        new or old,
        checks=checks,
        hook_calls=calls,
        hooks=HOOKS,
        routes=routes,
        when=when,
    )


def roundtrip(status: CanaryStatus) -> CanaryStatus:
    """Through the JSON the API server stores."""
    return CanaryStatus.from_body(json.loads(json.dumps(status.to_body())))


# ---------------------------------------------------------------------------- record_tick


def test_checks_are_replaced_by_a_tick_that_ran_some_and_kept_by_one_that_did_not() -> None:
    first = roundtrip(
        tick(
            CanaryStatus(phase=Phase.PROGRESSING),
            checks=(check("lat", 612, Verdict.FAIL),),
            when=T1,
        )
    )
    assert first.last_analysis is not None and first.last_analysis.time == T1
    # The rollback tick runs no check: the check that failed the canary stays visible.
    failed = tick(first, first.replace(phase=Phase.FAILED), calls=(hook("load", True),))
    assert failed.last_analysis is not None
    assert failed.last_analysis.time == T1
    assert [(c.metric, c.value, c.verdict) for c in failed.last_analysis.checks] == [
        ("lat", 612.0, "fail")
    ]
    assert [(w.name, w.ok, w.time) for w in failed.last_analysis.webhooks] == [("load", True, T2)]


def test_each_webhook_keeps_its_last_answer_in_spec_order_and_removed_ones_go() -> None:
    old = roundtrip(tick(CanaryStatus(), calls=(hook("load", False), hook("gone", True)), when=T1))
    assert old.last_analysis is not None
    assert [w.name for w in old.last_analysis.webhooks] == ["load"]  # "gone" is not in the spec
    new = tick(
        old, old.replace(phase=Phase.PROGRESSING), calls=(hook("gate", True, "confirm-rollout"),)
    )
    assert new.last_analysis is not None
    assert [(w.name, w.ok, w.time) for w in new.last_analysis.webhooks] == [
        ("gate", True, T2),
        ("load", False, T1),
    ]


def test_the_same_results_on_an_unchanged_status_keep_the_stored_record() -> None:
    """Nothing to write: the driver skips the patch when the status is equal."""
    calls = (hook("gate", False, "confirm-rollout"),)
    held = roundtrip(tick(CanaryStatus(phase=Phase.WAITING), calls=calls, when=T1))
    again = tick(held, calls=calls, when=T2)
    assert again == held
    # ...but a changed answer, or a status that is written anyway, records the new time.
    answered = tick(held, calls=(hook("gate", True, "confirm-rollout"),))
    assert answered != held and answered.last_analysis is not None
    moved = tick(held, held.replace(phase=Phase.PROGRESSING), calls=calls)
    assert moved.last_analysis is not None and moved.last_analysis.webhooks[0].time == T2


def test_a_tick_without_checks_or_hooks_adds_no_record() -> None:
    assert tick(CanaryStatus()).last_analysis is None
    assert "lastAnalysis" not in tick(CanaryStatus()).to_body()


def test_achieved_weights_are_recorded_only_where_the_router_approximates() -> None:
    approx = Routes(Weights(85, 15), achieved=Weights(67, 33))
    status = tick(CanaryStatus(), routes=approx)
    assert status.to_body()["achievedWeights"] == {"canary": 33, "primary": 67}
    exact = tick(status, routes=Routes(Weights(85, 15)))
    assert exact.achieved_weights is None and "achievedWeights" not in exact.to_body()
    assert tick(status, routes=None).achieved_weights == status.achieved_weights  # unknown: kept


def test_no_data_and_non_finite_values_are_stored_as_absent_and_secrets_are_masked() -> None:
    judged = check(
        f"lat-http://admin:{PASSWORD}@prom/",
        math.nan,
        Verdict.NO_DATA,
        explanation=f"query http://x/?token={PASSWORD} answered nothing",
    )
    status = tick(CanaryStatus(), checks=(judged, check("inf", math.inf, Verdict.FAIL)))
    body = json.loads(json.dumps(status.to_body(), allow_nan=False))  # valid JSON for the API
    stored = body["lastAnalysis"]["checks"]
    assert "value" not in stored[0] and "value" not in stored[1]
    assert stored[0]["verdict"] == "no_data"
    assert PASSWORD not in json.dumps(body)
    assert PASSWORD not in json.dumps(build_view({"metadata": {"name": "web"}, "status": body}, []))


def test_the_record_is_bounded_whatever_the_canary_holds() -> None:
    many = tuple(check(f"m{i}", float(i), Verdict.FAIL, explanation="x" * 5000) for i in range(100))
    body = tick(CanaryStatus(), checks=many).to_body()["lastAnalysis"]
    assert len(body["checks"]) == MAX_CHECKS
    assert max(len(c["explanation"]) for c in body["checks"]) == MAX_EXPLANATION
    assert len(json.dumps(body)) < 32 * 1024


def test_a_hand_edited_status_never_breaks_a_tick_or_get() -> None:
    garbage: dict[str, Any] = {
        "phase": "Progressing",
        "lastAnalysis": {
            "time": 5,
            "checks": [1, {"metric": 3}, {"metric": "ok", "value": "NaN", "verdict": "weird"}],
            "webhooks": "nope",
        },
        "achievedWeights": {"canary": "1"},
    }
    status = CanaryStatus.from_body(garbage)
    assert status.last_analysis == LastAnalysis(
        time="5", checks=(CheckRecord(metric="ok", verdict="error"),)
    )
    assert status.achieved_weights is None
    assert CanaryStatus.from_body({"lastAnalysis": "x"}).last_analysis is None
    odd_event = {**event(1, "hi"), "count": "many", "metadata": "?"}
    view = build_view({**canary(), "status": ["not", "a", "status"]}, [odd_event])
    assert (view["phase"], view["events"][0]["count"]) == ("", 1)
    text = render_table(
        build_view({"status": garbage}, [{"involvedObject": 7}]), colour=True, now=NOW
    )
    assert "ok" in text


# ---------------------------------------------------------------------------- the view


def canary(**analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "web", "namespace": "staging"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 3, "stepWeight": 10, **analysis},
        },
    }


def event(i: int, message: str, type_: str = "Normal", name: str = "web") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.{i}", "namespace": "staging", "resourceVersion": str(i)},
        "involvedObject": {"kind": "Canary", "name": name},
        "type": type_,
        "message": message,
        "lastTimestamp": f"2026-01-01T00:{i:02d}:00Z",
    }


def test_judged_dry_run_and_no_data_checks_read_as_in_simulate() -> None:
    judged = check(
        "latency",
        332.0,
        Verdict.FAIL,
        hi=None,
        explanation="canary 332 above the primary's 24h before the analysis (bound 281) → fail",
    )
    checks = (
        judged,
        check("errors", 7.0, Verdict.FAIL, dry_run=True),
        check("rps", None, Verdict.NO_DATA),
    )
    body = canary()
    body["status"] = tick(
        CanaryStatus(phase=Phase.PROGRESSING, failed_checks=1), checks=checks
    ).to_body()
    view = build_view(body, [])
    text = render_table(view, colour=False, now=NOW)
    lines = [line.split() for line in text.splitlines()]
    assert ["latency", "canary", "332", "vs", "primary", "FAIL"] in lines
    assert (
        "      canary 332 above the primary's 24h before the analysis (bound 281) → fail"
        in text.splitlines()
    )
    assert ["errors", "canary", "7", "<=", "500", "FAIL", "(dry", "run)"] in lines
    assert ["rps", "canary", "no", "data", "<=", "500", "NO", "DATA"] in lines
    assert "Failed checks: 1 / 3" in text
    assert view["lastAnalysis"]["checks"][0] == {
        "metric": "latency",
        "target": "canary",
        "value": 332.0,
        "min": None,
        "max": None,
        "verdict": "fail",
        "explanation": "canary 332 above the primary's 24h before the analysis (bound 281) → fail",
    }


def test_only_the_canarys_newest_events_are_shown_oldest_first_and_redacted() -> None:
    events = [event(i, f"step {i}") for i in range(15)]
    events.append(event(30, "other canary", name="api"))
    events.append(event(16, f"failed http://x:{PASSWORD}@hook/", "Warning"))
    view = build_view(canary(), reversed(events))
    shown = [e["message"] for e in view["events"]]
    assert len(shown) == EVENTS_SHOWN
    assert shown[0] == "step 6" and shown[-2] == "step 14"
    assert shown[-1].startswith("failed http://x:") and PASSWORD not in shown[-1]
    text = render_table(view, colour=False, now=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    assert "  14m  Warning  failed http://x:" in text


def test_a_spec_the_controller_rejects_is_still_shown_with_the_problem() -> None:
    body = canary(stepWeight=150)
    body["status"] = {"phase": "Failed", "canaryWeight": 0}
    view = build_view(body, [])
    assert view["phase"] == "Failed"
    assert "stepWeight" in view["specError"] and "150" in view["specError"]
    text = render_table(view, colour=False, now=NOW)
    assert "Spec:" in text and "No analysis recorded yet." in text


def test_an_operators_pause_and_last_command_are_shown() -> None:
    body = canary()
    body["status"] = {
        "phase": "Progressing",
        "canaryWeight": 20,
        "pausedAt": "2026-01-01T00:05:00Z",
        "lastCommand": {
            "id": "c1",
            "command": "pause",
            "handledAt": "2026-01-01T00:05:00Z",
            "outcome": "weight held at 20",
        },
    }
    view = build_view(body, [])
    assert view["pausedAt"] == "2026-01-01T00:05:00Z"
    assert view["lastCommand"] == {
        "id": "c1",
        "command": "pause",
        "handledAt": "2026-01-01T00:05:00Z",
        "outcome": "weight held at 20",
    }
    lines = render_table(view, colour=False, now=NOW).splitlines()
    assert "Paused:        since 2026-01-01T00:05:00Z" in lines
    assert "Last command:  pause (5m ago): weight held at 20" in lines


def test_ages_read_like_kubectls() -> None:
    assert [age(t, NOW) for t in ("2026-01-01T00:09:15Z", "2026-01-01T00:08:00Z")] == ["45s", "2m"]
    assert age("2025-12-31T20:00:00Z", NOW) == "4h"
    assert age("2025-12-25T00:00:00Z", NOW) == "7d"
    assert age("not a time", NOW) == "?" and age(None, NOW) == "?"


def test_get_help_imports_no_heavy_library() -> None:
    from tests.engine.test_cli_startup import HEAVY, _modules_after

    loaded = _modules_after(
        "import contextlib, io\n"
        "from engine.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['get', '--help'])"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


async def test_a_watch_that_stops_ends_get_watch_with_its_own_error() -> None:
    """Not wrapped in an ExceptionGroup: ``run_get`` turns it into exit status 4 and a message."""

    class StoppingCluster:
        async def watch(self, kind: Any, namespace: str | None) -> AsyncIterator[Any]:
            raise ClusterUnavailable("watch canaries: the cache stopped")
            yield  # an async generator

    out = io.StringIO()
    printer = _Printer(out, "table", False, False, True, RealClock())
    body = canary()
    with pytest.raises(ClusterUnavailable, match="the cache stopped"):
        await _follow(
            StoppingCluster(),  # type: ignore[arg-type]
            ObjectRef(CANARY, "staging", "web"),
            printer,
            io.StringIO(),
            body,
            [],
        )


def test_an_event_written_by_someone_else_cannot_drive_the_terminal() -> None:
    # a webhook server's error body reaches a Halt event: escapes, a carriage return and a
    # newline would clear the screen, recolour it and forge a "Promotion completed!" row
    hostile = (
        "\x1b[2J\x1b[H\x1b[32mCanary promoted\x1b[0m\r\x1b]8;;https://evil.example/\x07click"
        "\n  2m    Normal   Promotion completed! Scaling down web.staging \u202e"
    )
    body = {**canary(), "status": {"phase": "Progressing"}}
    table = render_table(build_view(body, [event(1, hostile, "Warning")]), colour=True, now=NOW)
    shown = re.sub("\x1b\\[[0-9;]*m", "", table)  # the table's own colours
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown
    assert "\\x1b[2J\\x1b[H" in table and "\\n  2m    Normal   Promotion completed!" in table
    assert len([line for line in table.splitlines() if "Promotion completed" in line]) == 1


def test_a_huge_event_is_cut_in_the_table_and_whole_in_json() -> None:
    body = {**canary(), "status": {"phase": "Progressing"}}
    view = build_view(body, [event(1, "x" * 1_000_000)])
    assert len(render_table(view, colour=False, now=NOW)) < 10_000
    assert len(view["events"][0]["message"]) == 1_000_000
