"""The comparative judge and the verdict policy through `canary-engine simulate`, as users run it.

Each test writes a Canary (the hidden-evaluation shape: interval 1m, stepWeight 5, maxWeight 60,
one metric with ``query`` and ``judge``) and a recording with canary samples from t > 0 and
primary samples before and after time 0, then reads the exit status and the JSON document.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
import yaml
from structlog.testing import LogCapture

import engine.shell.loop
from analysis import Recording
from config import Manifests, parse_canary
from engine.cli import main
from engine.cli.simulate import simulate
from tests.e2e.test_simulate import EXAMPLES, Sim, all_events, canary_yaml


@pytest.fixture
def sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Sim:
    return Sim(tmp_path, capsys)


def judged_canary(
    judge: dict[str, Any] | None = None, threshold: int = 1, **metric: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "latency", "interval": "1m", "query": "latency_p99"}
    if judge is not False:
        entry["judge"] = {"baseline": "primary", "harmful": "increase", **(judge or {})}
    entry.update(metric)
    return canary_yaml(
        {
            "interval": "1m",
            "threshold": threshold,
            "stepWeight": 5,
            "maxWeight": 60,
            "metrics": [entry],
        },
        provider="kubernetes",
    )


def rows(
    canary: list[float | None],
    primary: list[float | None] | None = None,
    *,
    history: int = 1440,
    seed: int = 3,
    level: float = 200.0,
) -> list[Any]:
    """A day of one-minute primary history at ``level`` (noise sd 10), then canary and primary
    samples at t = 60, 120, ... (``None``: no data)."""
    rng = np.random.default_rng(seed)
    out: list[Any] = [
        (t, "primary", "latency", round(float(rng.normal(level, 10.0)), 2))
        for t in range(-60 * history + 60, 1, 60)
    ]
    primary = primary if primary is not None else list(rng.normal(level, 10.0, len(canary)))
    for i, (c, p) in enumerate(zip(canary, primary, strict=True)):
        t = 60 * (i + 1)
        out.append((t, "canary", "latency", "" if c is None else round(float(c), 2)))
        out.append((t, "primary", "latency", "" if p is None else round(float(p), 2)))
    return out


def healthy(n: int = 20, seed: int = 5) -> list[float | None]:
    return list(np.random.default_rng(seed).normal(200.0, 10.0, n))


def judged_checks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for t in doc["ticks"] for c in t["checks"] if c["metric"] == "latency"]


def test_a_canary_like_its_primary_is_promoted_with_a_verdict_and_explanation_per_tick(
    sim: Sim,
) -> None:
    code, doc, _ = sim.run(judged_canary(), rows(healthy()))
    assert code == 0 and doc["result"] == "promoted"
    checks = judged_checks(doc)
    assert len(checks) >= 12
    assert {c["verdict"] for c in checks} == {"pass"}
    assert all(c["explanation"].endswith("→ pass") for c in checks)
    assert all("within the primary's 24h before the analysis" in c["explanation"] for c in checks)


def test_a_slower_canary_is_rolled_back_and_the_event_carries_the_numbers(sim: Sim) -> None:
    canary = healthy(4) + [400.0] * 16
    code, doc, _ = sim.run(judged_canary(), rows(canary))
    assert code == 1 and doc["result"] == "rolled_back"
    failed = [c for c in judged_checks(doc) if c["verdict"] == "fail"]
    assert failed and failed[0]["value"] == 400.0 and not failed[0]["passed"]
    events = all_events(doc)
    halt = next(e for e in events if e.startswith("Halt webhook-server.staging advancement"))
    assert "latency: canary 400 above the primary's 24h before the analysis (median 2" in halt
    assert halt.endswith("vs the median → fail")
    assert "Rolling back webhook-server.staging failed checks threshold reached 1" in events
    # Caught on the tick that first saw a slow sample (t = 300 s, the fifth sample).
    first_fail = next(
        t["t"] for t in doc["ticks"] for c in t["checks"] if c.get("verdict") == "fail"
    )
    assert first_fail == 300


def test_identical_canary_and_primary_are_promoted(sim: Sim) -> None:
    same = healthy()
    code, doc, _ = sim.run(judged_canary(), rows(same, list(same)))
    assert code == 0 and doc["result"] == "promoted"


def test_an_incident_on_both_versions_is_not_blamed_on_the_canary(sim: Sim) -> None:
    incident = healthy(4) + [900.0] * 16
    code, doc, _ = sim.run(
        judged_canary(), rows(incident, [950.0 if v == 900.0 else v for v in incident])
    )
    assert code == 0 and doc["result"] == "promoted"
    # A Flagger-style bound would have rolled it back:
    static = judged_canary(judge=False, thresholdRange={"max": 500})
    code, doc, _ = sim.run(static, rows(incident, list(incident)))
    assert code == 1


def test_judge_and_threshold_range_fail_when_either_fails(sim: Sim) -> None:
    both = judged_canary(thresholdRange={"max": 150})
    code, doc, _ = sim.run(both, rows(healthy()))
    assert code == 1  # the static bound fails a healthy canary at 200 ms
    event = next(e for e in all_events(doc) if e.startswith("Halt"))
    # Flagger's text for a static bound:
    assert event.startswith("Halt webhook-server.staging advancement latency ")
    assert event.endswith(" > 150")


def test_when_the_threshold_range_decides_the_explanation_says_so(sim: Sim) -> None:
    both = judged_canary(thresholdRange={"max": 150})
    _, doc, _ = sim.run(both, rows(healthy()))
    failed = next(c for c in judged_checks(doc) if c["verdict"] == "fail")
    # the static bound failed the check: the sentence says that first, not the judge's "pass"
    assert failed["explanation"].startswith(f"{failed['value']:.0f} above its thresholdRange max")
    assert " → fail; the judge alone: canary " in failed["explanation"]
    assert failed["explanation"].endswith("→ pass")


def test_with_too_little_history_a_passing_threshold_range_decides(sim: Sim) -> None:
    # Identical canary and primary, with 5 samples of history: the judge cannot say anything
    # (minHistory 20). Alone it holds the weight until inconclusiveLimit rolls the run back; with
    # a thresholdRange that passes, the range decides and the release is promoted.
    same = healthy(20)
    judged_only = judged_canary()
    code, _, err = sim.run(judged_only, rows(same, same, history=5))
    assert code == 1
    assert (
        "the recording has 5 primary samples up to time 0 for judged metric 'latency', 20 "
        "needed (judge.minHistory): every judged check will be inconclusive (the weight holds "
        "until inconclusiveLimit counts them as failed)"
    ) in err
    with_range = judged_canary(thresholdRange={"max": 1000})
    code, doc, _ = sim.run(with_range, rows(same, same, history=5))
    assert code == 0 and doc["result"] == "promoted"
    checks = judged_checks(doc)
    assert all(c["verdict"] == "pass" for c in checks)
    assert "its thresholdRange decides" in checks[0]["explanation"]
    assert "only 5 primary samples in the 24h before the analysis" in checks[0]["explanation"]


def test_the_history_warning_counts_what_the_judges_window_holds(sim: Sim) -> None:
    # A day of history, but a 10-minute judge.window: the judge sees 10 samples, and the warning
    # says so (it once counted every row before time 0, and stayed silent).
    same = healthy(20)
    _, _, err = sim.run(judged_canary(judge={"window": "10m"}), rows(same, same))
    assert "the recording has 10 primary samples up to time 0 for judged metric 'latency'" in err
    _, _, err = sim.run(judged_canary(), rows(same, same))
    assert "primary samples up to time 0" not in err


def test_the_history_warning_reads_sparse_rows_through_the_lookback(sim: Sim) -> None:
    # An hour of history, a row every 5 minutes (13 rows): the judge's one-minute grid reads a
    # value at each of its 60 points through Prometheus' 5-minute lookback, so minHistory (20)
    # is met, the run is judged and promotes; the warning once counted 13 rows and said every
    # check would be inconclusive.
    same = healthy(20)
    recording = [r for r in rows(same, same, history=61) if r[0] > 0 or r[0] % 300 == 0]
    assert sum(1 for r in recording if r[0] <= 0) == 13
    code, doc, err = sim.run(judged_canary(), recording)
    assert "judge.minHistory" not in err
    assert code == 0 and doc["result"] == "promoted"
    assert {c["verdict"] for c in judged_checks(doc)} == {"pass"}


def test_a_judged_metric_missing_from_the_recording_is_warned_as_inconclusive(sim: Sim) -> None:
    other = [(t, target, "other", v) for t, target, _, v in rows(healthy(20))]
    _, _, err = sim.run(judged_canary(), other)
    assert (
        "the recording has no canary samples for metric 'latency': every check of it will have "
        "no data (inconclusive, the weight held until inconclusiveLimit)"
    ) in err


def test_a_judged_metric_whose_canary_alone_is_missing_is_warned_as_a_failed_check(
    sim: Sim,
) -> None:
    # The primary answers and the canary does not (a canary outage): no data, a failed check by
    # default; with a thresholdRange the range sees no value either.
    primary_only = [r for r in rows(healthy(20)) if r[1] == "primary"]
    for canary in (judged_canary(), judged_canary(thresholdRange={"max": 500})):
        code, _, err = sim.run(canary, primary_only)
        assert code == 1
        assert (
            "the recording has no canary samples for metric 'latency': every check of it will "
            "have no data (a failed check)"
        ) in err
    nothing = [(t, target, "other", v) for t, target, _, v in rows(healthy(20))]
    _, _, err = sim.run(judged_canary(thresholdRange={"max": 500}), nothing)
    assert "will have no data (a failed check)" in err


def test_a_recording_whose_canary_starts_a_day_after_time_0_is_warned_of(sim: Sim) -> None:
    # What a file of RFC 3339 times sorted oldest first gives: its first (history) row is time 0,
    # so the canary's samples start a day later and every check of the run has no data.
    shifted = [(t + 86_400, target, metric, v) for t, target, metric, v in rows(healthy(20))]
    _, _, err = sim.run(judged_canary(), shifted)
    assert "the recording's first canary sample is 24h1m0s after time 0" in err
    assert "with RFC 3339 times, the file's first row" in err
    _, _, err = sim.run(judged_canary(), rows(healthy(20)))
    assert "first canary sample" not in err


def test_a_judge_step_longer_than_the_interval_judges_the_newest_sample(sim: Sim) -> None:
    # judge.step 3m on a 1m interval: the first ticks of the run hold no 3-minute grid point
    # after the start, so the judge reads the newest instant, as a window shorter than a step
    # does. The grid point at the start itself is no canary sample (it reads what came before):
    # counting it, an identical release got "no canary sample in the last 3m" and rolled back.
    same = healthy(20)
    code, doc, _ = sim.run(judged_canary(judge={"step": "3m"}), rows(same, same))
    assert code == 0 and doc["result"] == "promoted"
    assert {c["verdict"] for c in judged_checks(doc)} == {"pass"}


def test_canary_samples_before_time_0_are_not_held_against_the_release(sim: Sim) -> None:
    # The canary target's rows before time 0 are the previous revision's: a spike there is not
    # this release's. Read through the lookback at the grid point of time 0, it used to fail.
    same = healthy(20)
    recording = [*rows(same, same), (-60, "canary", "latency", 900.0)]
    code, doc, _ = sim.run(judged_canary(threshold=2), recording)
    assert code == 0 and doc["result"] == "promoted"
    assert all("900" not in c["explanation"] for c in judged_checks(doc))


def test_a_primary_spike_during_the_analysis_does_not_excuse_a_canary_breach(sim: Sim) -> None:
    # The canary spikes to 600 at t=180; the primary spikes to 2000 at t=240. The envelope is
    # the primary's day before the analysis, so the breach stays and threshold 2 rolls back.
    canary = healthy(20)
    primary = healthy(20, seed=9)
    canary[2], primary[3] = 600.0, 2000.0
    code, doc, _ = sim.run(judged_canary(threshold=2), rows(canary, primary))
    assert code == 1 and doc["result"] == "rolled_back"
    verdicts = [c["verdict"] for c in judged_checks(doc)]
    assert verdicts[verdicts.index("fail") :] == ["fail", "fail"]


def test_too_little_history_is_inconclusive_holds_the_weight_then_counts_as_failed(
    sim: Sim,
) -> None:
    canary = judged_canary(judge={"minHistory": 2000})
    canary["spec"]["analysis"]["inconclusiveLimit"] = 3
    code, doc, _ = sim.run(canary, rows(healthy(), history=60))
    assert code == 1
    verdicts = [c["verdict"] for c in judged_checks(doc)]
    assert verdicts[:4] == ["inconclusive"] * 4
    weights = [t["canaryWeight"] for t in doc["ticks"]]
    assert weights[1:5] == [5, 5, 5, 5]  # held while inconclusive
    events = all_events(doc)
    assert any(
        "Holding webhook-server.staging at its weight: latency inconclusive" in e
        and "1 of 3 inconclusive checks allowed" in e
        for e in events
    )
    assert any("inconclusive limit 3 reached, counted as a failed check" in e for e in events)


def test_no_data_policy_and_dry_run(sim: Sim) -> None:
    gaps: list[float | None] = [200.0, None, None, 200.0, *healthy(16)]
    # Flagger's default: no data is a failed check.
    code, _, _ = sim.run(judged_canary(threshold=2), rows(gaps))
    assert code == 1
    # onNoData: inconclusive holds the weight instead.
    code, doc, _ = sim.run(judged_canary(threshold=2, onNoData="inconclusive"), rows(gaps))
    assert code == 0
    assert "no_data" in {c["verdict"] for c in judged_checks(doc)}
    # A dry-run metric is evaluated and shown but never counted, even when it fails.
    slow = healthy(4) + [400.0] * 16
    code, doc, _ = sim.run(judged_canary(dryRun=True), rows(slow))
    assert code == 0
    failing = [c for c in judged_checks(doc) if c["verdict"] == "fail"]
    assert failing and all(c["dryRun"] for c in failing)
    assert any(
        e.startswith("Dry-run metric latency would have failed: canary 400 above the primary's")
        for e in all_events(doc)
    )


def test_a_source_silent_for_both_versions_holds_the_weight_unless_on_no_data_says_otherwise(
    sim: Sim,
) -> None:
    # Two minutes without a sample from either version (the exporter was down): by default the
    # judge holds the weight rather than blame the canary ...
    canary = healthy(20)
    primary = healthy(20, seed=6)
    for i in (3, 4):
        canary[i] = primary[i] = None
    code, doc, _ = sim.run(judged_canary(threshold=1), rows(canary, primary))
    assert code == 0
    verdicts = [c["verdict"] for c in judged_checks(doc)]
    assert "inconclusive" in verdicts and "no_data" not in verdicts
    # ... while a metric that states onNoData gets its own policy: fail is Flagger's failed check.
    code, doc, _ = sim.run(judged_canary(threshold=1, onNoData="fail"), rows(canary, primary))
    assert code == 1
    assert "no_data" in {c["verdict"] for c in judged_checks(doc)}


def test_the_bundled_judged_example(sim: Sim) -> None:
    canary = EXAMPLES / "webhook-server-judged.yaml"
    code, _, _ = sim.run(canary, EXAMPLES / "webhook-server-judged-good.csv")
    assert code == 0
    code, doc, _ = sim.run(canary, EXAMPLES / "webhook-server-judged-bad.csv")
    assert code == 1
    assert any("request-duration: canary" in e for e in all_events(doc))


def test_the_timeline_shows_verdicts_and_explanations(sim: Sim) -> None:
    code, out, _ = sim.run(judged_canary(), rows(healthy(4) + [400.0] * 16), output="table")
    assert code == 1
    assert (
        "latency 400 (vs primary) FAIL — canary 400 above the primary's 24h before the analysis"
        in out
    )


@pytest.mark.parametrize(
    ("judge", "says"),
    [
        ({"baseline": "canary", "harmful": "increase"}, "judge.baseline"),
        ({"baseline": "primary", "harmful": "up"}, "judge.harmful"),
        ({"baseline": "primary"}, "judge.harmful"),
        (
            {"baseline": "primary", "harmful": "increase", "confidence": 1.5},
            "judge.confidence: must be < 1.0, got 1.5",
        ),
        (
            {"baseline": "primary", "harmful": "increase", "confidence": 0.5},
            "judge.confidence: must be > 0.5, got 0.5",
        ),
        (
            {"baseline": "primary", "harmful": "increase", "confidence": float("nan")},
            "judge.confidence: must be a finite number, got nan",
        ),
        ({"baseline": "primary", "harmful": "increase", "window": "soon"}, "judge.window"),
        ({"baseline": "primary", "harmful": "increase", "windw": "1h"}, "judge.windw"),
    ],
)
def test_a_bad_judge_is_a_clear_error_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], judge: dict[str, Any], says: str
) -> None:
    body = judged_canary()
    body["spec"]["analysis"]["metrics"][0]["judge"] = judge
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert f"spec.analysis.metrics[0].{says}" in out.out + out.err


def test_the_controller_logs_each_judged_verdict_with_its_explanation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary = parse_canary(judged_canary())
    samples: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    for t, target, metric, value in rows(healthy(4) + [400.0] * 16):
        samples.setdefault((target, metric), []).append((t, None if value == "" else value))
    capture = LogCapture()
    # The driver's logger, capturing everything whatever an earlier test configured
    # (engine.shell.logs caches loggers and filters by level).
    monkeypatch.setattr(
        engine.shell.loop,
        "log",
        structlog.wrap_logger(
            None,
            processors=[capture],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        ),
    )
    result = asyncio.run(simulate(Manifests(canaries=[canary]), canary, Recording(samples)))
    logs = capture.entries
    assert result.result == "rolled_back"
    judged = [e for e in logs if e["event"] == "check_judged"]
    assert {e["verdict"] for e in judged} == {"pass", "fail"}
    failing = next(e for e in judged if e["verdict"] == "fail")
    assert failing["metric"] == "latency"
    assert failing["explanation"].startswith(
        "canary 400 above the primary's 24h before the analysis"
    )
