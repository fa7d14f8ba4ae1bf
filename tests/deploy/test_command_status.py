"""The Canary CRD accepts what operator commands make the controller write (README "Operator
commands"): ``status.pausedAt``, ``status.resumedAt`` and ``status.lastCommand``. The API server
prunes or rejects status fields its schema does not declare, which would lose a pause and let a
handled command run again after a restart."""

from __future__ import annotations

from config import CanaryStatus, HandledCommand, Phase
from tests.deploy.test_manifests import _canary, _crd_errors


def test_the_crd_accepts_a_paused_status_with_its_last_command() -> None:
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=15,
        last_transition_time="2026-01-01T00:00:00Z",
        paused_at="2026-01-01T00:01:00Z",
        resumed_at="2026-01-01T00:00:30Z",
        last_command=HandledCommand(
            id="0123456789abcdef0123456789abcdef",
            command="pause",
            handled_at="2026-01-01T00:01:00Z",
            outcome="holding canary weight 15; no checks are counted until resume",
        ),
    ).to_body()
    assert {"pausedAt", "resumedAt", "lastCommand"} <= set(status)
    assert _crd_errors({**_canary(), "status": status}) == []


def test_a_status_field_the_crd_does_not_declare_is_an_error() -> None:
    # what the first test would see had the schema not declared the fields
    status = {**CanaryStatus(phase=Phase.PROGRESSING).to_body(), "pausedSince": "x"}
    errors = _crd_errors({**_canary(), "status": status})
    assert errors and any("pausedSince" in e for e in errors), errors
