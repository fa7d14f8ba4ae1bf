"""Port of Flagger's pkg/controller/events_test.go TestWebhooks: every webhook a release calls, in
order, with the phase each payload carries and (for event hooks) the event's text.

Flagger's fixture has the primary become ready only on the second tick (its first "not ready"
event and a second "all the metrics providers are available!" come from that); the in-memory
cluster makes the primary ready at once, so the initialisation sends each of them once. Every
later call is Flagger's list as it is. The skip-analysis case adds the post-rollout call that
fluxcd/flagger#1918 ("Run post-rollout hooks when skipAnalysis is true") put into shouldSkipAnalysis
after this test was written.
"""

from __future__ import annotations

from typing import Any

from driver_world import NS, Recorder, web_driver

from traffic import CANARY, DEPLOYMENT, InMemoryCluster, ObjectRef

HOOK_TYPES = (
    "event",
    "pre-rollout",
    "rollout",
    "confirm-promotion",
    "confirm-rollout",
    "post-rollout",
    "confirm-traffic-increase",
)
HOOKS = [{"type": t, "name": f"{t}-webhook", "url": f"http://hooks.test/{t}"} for t in HOOK_TYPES]


def phase_of(cluster: InMemoryCluster) -> str:
    body = cluster.peek(ObjectRef(CANARY, NS, "web")) or {}
    return str((body.get("status") or {}).get("phase", ""))


def calls_by_path(recorder: Recorder) -> dict[str, list[tuple[str, str]]]:
    """What Flagger's test server records: per URL path, (phase, metadata.eventMessage)."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for hook, payload in recorder.calls:
        message = (payload.get("metadata") or {}).get("eventMessage", "")
        seen.setdefault(hook.url.rsplit("/", 1)[1], []).append((payload["phase"], message))
    return seen


async def release(skip_analysis: bool) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    recorder = Recorder()
    analysis: dict[str, Any] = {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 100,
        "stepWeightPromotion": 50,
        "webhooks": HOOKS,
    }
    cluster, driver = web_driver(
        caller=recorder, provider="istio", analysis=analysis, skipAnalysis=skip_analysis
    )
    phases = []
    await driver.tick()
    phases.append(phase_of(cluster))
    await cluster.patch(
        ObjectRef(DEPLOYMENT, NS, "web"),
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
    )
    for _ in range(8):
        await driver.tick()
        phases.append(phase_of(cluster))
        if phases[-1] == "Succeeded":
            break
    return phases, calls_by_path(recorder)


INIT = [
    ("Initializing", "all the metrics providers are available!"),
    ("Initialized", "Initialization done! web.staging"),
    ("Initialized", "Confirm-rollout check confirm-rollout-webhook passed"),
    ("Progressing", "New revision detected! Scaling up web.staging"),
]


async def test_a_canary_release_calls_every_hook_in_flaggers_order() -> None:
    # Flagger's events_test.go TestWebhooks "canary"
    phases, calls = await release(skip_analysis=False)
    assert phases == [
        "Initialized",
        "Progressing",  # new revision detected
        "Progressing",  # canary weight 100
        "Promoting",  # start promotion
        "Promoting",  # primary weight 50
        "Finalising",  # primary weight 100
        "Succeeded",
    ]
    assert calls.pop("event") == [
        *INIT,
        ("Progressing", "Starting canary analysis for web.staging"),
        ("Progressing", "Pre-rollout check pre-rollout-webhook passed"),
        ("Progressing", "Confirm-traffic-increase check confirm-traffic-increase-webhook passed"),
        ("Progressing", "Advance web.staging canary weight 100"),
        ("Progressing", "Confirm-traffic-increase check confirm-traffic-increase-webhook passed"),
        ("Progressing", "Confirm-promotion check confirm-promotion-webhook passed"),
        ("Progressing", "Copying web.staging template spec to web-primary.staging"),
        ("Promoting", "Advance web.staging primary weight 50"),
        ("Promoting", "Advance web.staging primary weight 100"),
        ("Succeeded", "Post-rollout check post-rollout-webhook passed"),
        ("Succeeded", "Promotion completed! Scaling down web.staging"),
    ]
    assert calls == {
        "confirm-rollout": [("Initialized", "")],
        "confirm-promotion": [("Progressing", "")],
        "confirm-traffic-increase": [("Progressing", ""), ("Progressing", "")],
        "pre-rollout": [("Progressing", "")],
        "post-rollout": [("Succeeded", "")],
        "rollout": [("Progressing", "")],
    }


async def test_a_skipped_analysis_calls_only_the_gate_and_the_post_rollout_hooks() -> None:
    # Flagger's events_test.go TestWebhooks "skip-analysis" (with fluxcd/flagger#1918)
    phases, calls = await release(skip_analysis=True)
    assert phases == ["Initialized", "Progressing", "Succeeded"]
    init = [entry for entry in INIT if "metrics providers" not in entry[1]]
    assert calls.pop("event") == [
        *init,  # a skipped analysis checks no metric provider
        ("Progressing", "Copying web.staging template spec to web-primary.staging"),
        ("Succeeded", "Post-rollout check post-rollout-webhook passed"),
        ("Succeeded", "Promotion completed! Canary analysis was skipped for web.staging"),
    ]
    assert calls == {
        "confirm-rollout": [("Initialized", "")],
        "post-rollout": [("Succeeded", "")],
    }
