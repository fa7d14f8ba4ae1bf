"""Which window ``canary-engine report`` replays: from the newest "New revision detected!" event
to the end of the run (or now), unless --start / --end say otherwise; and how much history a
comparative judge needs before it. The command itself runs in test_report_cluster_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from config import SpecError, parse_canary
from engine.cli.report_cluster import analysis_window, judge_history_seconds

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def revision(when: str, message: str = "New revision detected! Scaling up web.prod") -> Any:
    return {"message": message, "type": "Normal", "lastTimestamp": when}


def canary(phase: str = "Progressing", ended: str = "") -> Any:
    return {"status": {"phase": phase, "lastTransitionTime": ended}}


def test_the_newest_revision_event_starts_the_window_and_the_final_phase_ends_it() -> None:
    events = [
        revision("2026-03-01T09:00:00Z"),
        revision("2026-03-01T11:00:00Z"),
        revision("2026-03-01T11:30:00Z", "Advance web.prod canary weight 10"),
    ]
    window = analysis_window(canary("Failed", "2026-03-01T11:12:00Z"), events, now=NOW)
    assert (window.start, window.end) == (
        datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 11, 12, tzinfo=UTC),
    )
    assert "New revision detected!" in window.start_from
    assert "lastTransitionTime (phase Failed)" in window.end_from


def test_malformed_event_times_are_ignored_not_fatal() -> None:
    events = [revision("2026-03-01T11:00:00Z"), revision("2026-99-99T99:00:00Z"), revision("")]
    window = analysis_window(canary("Failed", "not a time"), events, now=NOW)
    assert window.start == datetime(2026, 3, 1, 11, 0, tzinfo=UTC) and window.end == NOW


def test_a_running_analysis_is_replayed_up_to_now() -> None:
    # lastTransitionTime of a Progressing canary is when it started progressing, not an end
    window = analysis_window(
        canary("Progressing", "2026-03-01T11:01:00Z"), [revision("2026-03-01T11:00:00Z")], now=NOW
    )
    assert window.end == NOW and "now" in window.end_from


def test_a_final_phase_older_than_the_revision_is_not_its_end() -> None:
    # the previous rollout succeeded at 10:00; the new revision at 11:00 is still analysing
    window = analysis_window(
        canary("Succeeded", "2026-03-01T10:00:00Z"), [revision("2026-03-01T11:00:00Z")], now=NOW
    )
    assert window.end == NOW


def test_start_and_end_options_win() -> None:
    window = analysis_window(
        canary("Failed", "2026-03-01T11:12:00Z"),
        [revision("2026-03-01T11:00:00Z")],
        now=NOW,
        start="-2h",
        end="2026-03-01T10:30:00Z",
    )
    assert window.start == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert (window.start_from, window.end_from) == ("--start", "--end")


@pytest.mark.parametrize(
    ("events", "options", "field", "says"),
    [
        ([], {}, "--start", "keeps events for an hour"),
        ([revision("2026-03-01T11:00:00Z")], {"start": "yesterday"}, "--start", "not a time"),
        ([revision("2026-03-01T11:00:00Z")], {"end": "-3h"}, "--end", "before it starts"),
    ],
)
def test_no_window_to_replay_is_bad_input_naming_the_option(
    events: list[Any], options: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(SpecError) as raised:
        analysis_window(canary(), events, now=NOW, **options)
    rendered = raised.value.render()
    assert field in rendered and says in rendered


def judged(*windows: str | None) -> Any:
    metrics = []
    for i, window in enumerate(windows):
        metric: dict[str, Any] = {"name": f"m{i}", "query": "up", "thresholdRange": {"max": 1}}
        if window is not None:
            metric["judge"] = {"baseline": "primary", "harmful": "increase", "window": window}
        metrics.append(metric)
    return parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "stepWeight": 10, "metrics": metrics},
            },
        }
    )


def test_a_judge_is_given_its_window_of_history_capped_at_a_day() -> None:
    assert judge_history_seconds(judged(None)) == 0
    assert judge_history_seconds(judged("1h", None, "6h")) == 6 * 3600
    assert judge_history_seconds(judged("72h")) == 86_400
