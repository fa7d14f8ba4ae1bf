"""`simulate` stops at a documented bound: ``MAX_TICKS`` ticks or ``MAX_VIRTUAL_SECONDS`` of virtual
time, whichever comes first (README "Security and limits" → "Input bounds"). A Canary that never
decides (suspended, a closed gate) against a recording with one sample at t=1e9 used to tick ~10^8
times with no cap; now it ends undecided (exit 3) with a warning naming the bound that stopped it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import engine.cli.simulate as sim
from engine.cli import main
from engine.cli.simulate import MAX_TICKS, MAX_VIRTUAL_SECONDS, load_inputs, simulate

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: prod
spec:
  provider: kubernetes
  suspend: {suspend}
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  service:
    port: 80
  analysis:
    interval: {interval}
    threshold: 2
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
    webhooks:
      - name: gate
        type: confirm-rollout
        url: http://gate.test/
"""

FAR_SAMPLE = (
    "time,target,metric,value\n"
    "0,canary,request-success-rate,99.9\n"
    "1e9,canary,request-success-rate,99.9\n"  # one sample 31 years on
)
GATE_CLOSED = "0,webhook,gate,0\n"


def _files(tmp_path: Path, *, suspend: bool, interval: str, rows: str) -> tuple[str, str]:
    canary = tmp_path / "canary.yaml"
    canary.write_text(CANARY.format(suspend=str(suspend).lower(), interval=interval))
    recording = tmp_path / "rec.csv"
    recording.write_text(rows)
    return str(canary), str(recording)


def test_the_bounds_are_beyond_any_realistic_recording() -> None:
    # a day of 10-second analysis intervals, a week at Flagger's usual minute
    assert MAX_TICKS >= 86_400 / 10
    assert MAX_VIRTUAL_SECONDS >= 7 * 86_400


def test_a_suspended_canary_stops_at_the_virtual_time_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary, recording = _files(tmp_path, suspend=True, interval="60m", rows=FAR_SAMPLE)
    code = main(["simulate", "--canary", canary, "--recording", recording, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 3
    doc = json.loads(out)
    assert doc["result"] == "undecided" and doc["decidedAt"] is None
    assert len(doc["ticks"]) == MAX_VIRTUAL_SECONDS / 3600 + 1  # t = 0 .. 7 days, hourly
    assert doc["ticks"][-1]["t"] == MAX_VIRTUAL_SECONDS
    assert (
        "warning: stopped undecided at t=604800s after 169 ticks: the 7-day virtual-time limit"
        in (err)
    ), err
    assert "the recording runs to t=1e+09s" in err


def test_a_closed_gate_stops_at_the_tick_bound_with_a_warning_in_the_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim, "MAX_TICKS", 50)
    canary, recording = _files(
        tmp_path, suspend=False, interval="10s", rows=FAR_SAMPLE + GATE_CLOSED
    )
    code = main(["simulate", "--canary", canary, "--recording", recording])
    out = capsys.readouterr().out
    assert code == 3
    assert "warning: stopped undecided at t=490s after 50 ticks: the 50-tick limit" in out, out
    assert "result: UNDECIDED (stopped by the 50-tick limit)" in out
    code = main(["simulate", "--canary", canary, "--recording", recording, "--output", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc["result"] == "undecided"
    assert doc["stoppedBy"] == "the 50-tick limit"


def test_the_real_tick_bound_keeps_memory_to_max_ticks_reports(tmp_path: Path) -> None:
    canary, recording = _files(tmp_path, suspend=True, interval="10s", rows=FAR_SAMPLE)
    manifests, spec, rec = load_inputs(canary, [], recording, None)
    result = asyncio.run(simulate(manifests, spec, rec))
    assert result.result == "undecided" and result.exit_code == 3
    assert len(result.ticks) == MAX_TICKS
    assert result.stopped_by == f"the {MAX_TICKS:,}-tick limit"
    assert result.warnings[-1].startswith(
        f"stopped undecided at t={(MAX_TICKS - 1) * 10}s after {MAX_TICKS:,} ticks"
    )


def test_an_interval_past_the_clock_range_stops_at_the_time_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Go's longest duration between ticks (10^9 hours, now refused, used to overflow the virtual
    # clock's datetime on the way to 1e20 s)
    canary, recording = _files(
        tmp_path,
        suspend=False,
        interval="153722820m",  # 2562047h
        rows="time,target,metric,value\n0,canary,request-success-rate,99.9\n"
        "1e20,canary,request-success-rate,99.9\n",
    )
    code = main(["simulate", "--canary", canary, "--recording", recording, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert len(json.loads(out)["ticks"]) == 1
    assert "the 7-day virtual-time limit" in err


def test_a_recording_that_ends_is_not_a_bound(tmp_path: Path) -> None:
    rows = "time,target,metric,value\n0,canary,request-success-rate,99.9\n600,canary,m,1\n"
    canary, recording = _files(tmp_path, suspend=True, interval="1m", rows=rows)
    manifests, spec, rec = load_inputs(canary, [], recording, None)
    result = asyncio.run(simulate(manifests, spec, rec))
    assert result.result == "undecided"
    assert result.stopped_by is None
    assert not any("stopped undecided" in w for w in result.warnings)
    assert result.ticks[-1].t == 900  # the last sample plus the 300 s lookback
