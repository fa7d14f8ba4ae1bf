"""Event webhooks: a Canary's own ``type: event`` hooks, or else the controller-wide one
(Flagger's ``-event-webhook`` / ``EVENT_WEBHOOK_URL``), receive every event."""

from __future__ import annotations

from typing import Any

import pytest
from driver_world import Recorder, web_driver

from engine import CanaryDriver, Settings
from engine.shell.run import options_from_env

GLOBAL = "http://events.example.com/flagger"


def driver(webhooks: list[dict[str, Any]], recorder: Recorder) -> CanaryDriver:
    _, canary_driver = web_driver(
        webhooks=webhooks, caller=recorder, settings=Settings(event_webhook=GLOBAL)
    )
    return canary_driver


async def test_a_canary_without_event_hooks_sends_its_events_to_the_global_webhook() -> None:
    recorder = Recorder()
    await driver([], recorder).tick()
    assert recorder.calls, "the initialisation events reach the controller-wide webhook"
    hooks = {(hook.name, hook.url, hook.type) for hook, _ in recorder.calls}
    assert hooks == {("events", GLOBAL, "event")}
    messages = [payload["metadata"]["eventMessage"] for _, payload in recorder.calls]
    assert "Initialization done! web.staging" in messages
    assert all(payload["name"] == "web" for _, payload in recorder.calls)


async def test_each_event_carries_the_phase_it_happened_in() -> None:
    # Flagger's events_test.go: "Initialization done!" is sent with Initialized, though the tick
    # started in Initializing (the phase of the moment, not of the tick's start)
    recorder = Recorder()
    await driver([], recorder).tick()
    phases = {
        payload["metadata"]["eventMessage"]: payload["phase"] for _, payload in recorder.calls
    }
    assert phases["Initialization done! web.staging"] == "Initialized"


async def test_a_canary_with_its_own_event_hook_is_not_sent_to_the_global_one() -> None:
    recorder = Recorder()
    own = {"name": "audit", "type": "event", "url": "http://audit.example.com/"}
    await driver([own], recorder).tick()
    assert recorder.calls
    assert {hook.name for hook, _ in recorder.calls} == {"audit"}


def _options(flag: str | None) -> str:
    return options_from_env(
        kubeconfig=None,
        namespaces=[],
        selector=None,
        metrics_server="http://prometheus:9090",
        mesh_provider="kubernetes",
        port=8080,
        leader_elect=False,
        version="test",
        event_webhook=flag,
    ).event_webhook


def test_event_webhook_url_in_the_environment_wins_over_the_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVENT_WEBHOOK_URL", raising=False)
    assert _options(None) == ""
    assert _options(GLOBAL) == GLOBAL
    monkeypatch.setenv("EVENT_WEBHOOK_URL", "http://env.example.com/")
    assert _options(GLOBAL) == "http://env.example.com/"
