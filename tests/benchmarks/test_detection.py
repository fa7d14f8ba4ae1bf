"""The detection benchmark (benchmarks/detection.py) on tiny synthetic data directories."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _scenarios as S
import detection as D
from _scoring import Outcome, score_setting, wilson

from engine.shell import logs

HOUR = timedelta(hours=1)
FIVE_MIN = timedelta(minutes=5)
START = datetime(2018, 6, 1, tzinfo=UTC)

# Microsoft-like latency series (hourly, P = 168): a harmful rise at rows 250..254 (bad) and a
# drop at rows 330..333 (an improvement: ambiguous).
LAT_ROWS = 360
LAT_RISE = range(250, 255)
LAT_DROP = range(330, 334)
# NAB-like CPU series (5 min, P = 288): a step from 1 to 5 at row 600.
CPU_ROWS = 700
CPU_ONSET = 600


def _pattern(i: int) -> float:
    return 10.0 + (i % 5) * 0.1  # period 5 divides neither 168 nor 288: shifts show


def _latency_value(i: int) -> float:
    if i in LAT_RISE:
        return 50.0
    if i in LAT_DROP:
        return 1.0
    return _pattern(i)


def _write_ms(root: Path) -> None:
    lat = root / "msft" / "middle-tier-latency"
    lat.mkdir(parents=True)
    lines = ["TimeStamp,Value,Label"]
    for i in range(LAT_ROWS):
        ts = (START + i * HOUR).strftime("%Y-%m-%d %H:%M:%S")
        label = int(i in LAT_RISE or i in LAT_DROP)
        lines.append(f"{ts},{_latency_value(i)},{label}")
        if i == 20:
            lines.append(lines[-1])  # exact duplicate row
    (lat / "lat-01.csv").write_text("\n".join(lines) + "\n")
    # anomaly-free request rate: quoted fields, CRLF, a missing value in the history
    rps = root / "msft" / "shop-incoming-rps"
    rps.mkdir(parents=True)
    lines = ['"TimeStamp","Value","Label"']
    for i in range(200):
        ts = (START + i * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = "" if i == 170 - 20 else f"{_pattern(i)}"
        lines.append(f'"{ts}","{value}","0"')
    (rps / "rps-01.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())


def _write_nab(root: Path) -> None:
    cat = root / "nab" / "realAWSCloudwatch"
    cat.mkdir(parents=True)
    lines = ["timestamp,value"]
    for i in range(CPU_ROWS):
        ts = (START + i * FIVE_MIN).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{ts},{5.0 if i >= CPU_ONSET else 1.0 + (i % 3) * 0.01}")
    (cat / "ec2_cpu_utilization_x.csv").write_text("\n".join(lines) + "\n")
    fmt = "%Y-%m-%d %H:%M:%S"
    onset = START + CPU_ONSET * FIVE_MIN
    labels = {"realAWSCloudwatch/ec2_cpu_utilization_x.csv": [(onset + HOUR / 30).strftime(fmt)]}
    windows = {
        "realAWSCloudwatch/ec2_cpu_utilization_x.csv": [
            [
                (onset - 40 * FIVE_MIN).strftime(fmt + ".000000"),
                (onset + 40 * FIVE_MIN).strftime(fmt + ".000000"),
            ]
        ]
    }
    (root / "nab" / "labels").mkdir()
    (root / "nab" / "labels" / "combined_labels.json").write_text(json.dumps(labels))
    (root / "nab" / "labels" / "combined_windows.json").write_text(json.dumps(windows))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _write_ms(root)
    _write_nab(root)
    return root


@pytest.fixture(scope="module")
def built(data_dir: Path) -> tuple[list[S.Scenario], dict[str, S.Answer]]:
    return S.build_scenarios(data_dir, seed=7)


def _by_kind(built: tuple[list[S.Scenario], dict[str, S.Answer]], kind: str, series: str) -> list:
    scenarios, key = built
    return [
        (s, key[s.id]) for s in scenarios if key[s.id].kind == kind and series in key[s.id].series
    ]


def test_scenario_counts(built: tuple[list[S.Scenario], dict[str, S.Answer]]) -> None:
    _, key = built
    per = {}
    for a in key.values():
        per[(a.series.split("/")[-1], a.kind)] = per.get((a.series.split("/")[-1], a.kind), 0) + 1
    assert per == {
        ("lat-01.csv", "bad"): 1,
        ("lat-01.csv", "common_mode"): 1,
        ("lat-01.csv", "ambiguous"): 1,
        # clean 20-row windows from row 168, avoiding rows 244..260 and 324..339
        ("lat-01.csv", "good"): 7,
        ("lat-01.csv", "aa"): 7,
        ("rps-01.csv", "good"): 1,
        ("rps-01.csv", "aa"): 1,
        ("ec2_cpu_utilization_x.csv", "bad"): 1,
        ("ec2_cpu_utilization_x.csv", "common_mode"): 1,
        # 15 clean windows (13 before the NAB window, 2 after) capped at 10
        ("ec2_cpu_utilization_x.csv", "good"): 10,
        ("ec2_cpu_utilization_x.csv", "aa"): 10,
    }
    assert S.counts(key.values()) == {
        "bad": 2,
        "common_mode": 2,
        "ambiguous": 1,
        "good": 18,
        "aa": 18,
    }


def test_metadata_inferred(built: tuple[list[S.Scenario], dict[str, S.Answer]]) -> None:
    ((_, lat),) = _by_kind(built, "bad", "lat-01")
    ((_, cpu),) = _by_kind(built, "bad", "ec2_cpu")
    ((_, rps),) = _by_kind(built, "good", "rps-01")
    assert (lat.metric_kind, lat.harmful, lat.interval_group, lat.period_rows) == (
        "latency",
        "increase",
        "1h",
        168,
    )
    assert (cpu.metric_kind, cpu.harmful, cpu.interval_group, cpu.period_rows) == (
        "cpu",
        "increase",
        "5min",
        288,
    )
    assert (rps.metric_kind, rps.harmful) == ("request_rate", "decrease")
    assert lat.persistence == "sustained" and lat.segment_rows == 5
    ((_, amb),) = _by_kind(built, "ambiguous", "lat-01")
    assert amb.observed_direction == "down" and amb.onset_row == LAT_DROP[0]


def test_onset_iteration_recorded(built: tuple[list[S.Scenario], dict[str, S.Answer]]) -> None:
    for series, onset, onset_value in (("lat-01", LAT_RISE[0], 50.0), ("ec2_cpu", CPU_ONSET, 5.0)):
        ((sc, a),) = _by_kind(built, "bad", series)
        assert a.k is not None and 0 <= a.k <= S.N_ITERATIONS // 2
        assert a.onset_row == onset and a.start_row == onset - a.k
        assert sc.canary[a.k] == onset_value
        assert np.all(sc.canary[: a.k] != onset_value)
    # k is drawn per onset with the seed: the same seed gives the same k
    assert S.draw_k(7, "x", 1) == S.draw_k(7, "x", 1)
    ks = {S.draw_k(3, "series", o) for o in range(200)}
    assert ks == set(range(S.N_ITERATIONS // 2 + 1))


def test_primary_is_shifted_by_one_period(
    built: tuple[list[S.Scenario], dict[str, S.Answer]],
) -> None:
    values = np.array([_latency_value(i) for i in range(LAT_ROWS)])
    for sc, a in _by_kind(built, "good", "lat-01"):
        s, p = a.start_row, a.period_rows
        assert len(sc.canary) == len(sc.primary) == S.N_ITERATIONS + S.EXTRA_ROWS
        np.testing.assert_array_equal(sc.canary, values[s : s + len(sc.canary)])
        np.testing.assert_array_equal(sc.primary, values[s - p : s - p + len(sc.primary)])
        np.testing.assert_array_equal(sc.history, values[s - p : s])
        assert not np.array_equal(sc.canary, sc.primary)
    for sc, _ in _by_kind(built, "aa", "lat-01") + _by_kind(built, "common_mode", ""):
        assert sc.canary.tobytes() == sc.primary.tobytes()


def test_parsing_quirks(data_dir: Path) -> None:
    times, values, labels = S.read_series_csv(data_dir / "msft/shop-incoming-rps/rps-01.csv")
    assert len(times) == 200 and labels is not None and np.isnan(values[150])
    times, _, _ = S.read_series_csv(data_dir / "msft/middle-tier-latency/lat-01.csv")
    assert len(times) == LAT_ROWS  # the duplicate row is dropped
    assert S.parse_timestamp('"2018-06-01T01:00:00Z"') == S.parse_timestamp("2018-06-01 01:00:00")


def test_labels_never_reach_scenarios(built: tuple[list[S.Scenario], dict[str, S.Answer]]) -> None:
    scenarios, key = built
    assert {f.name for f in fields(S.Scenario)} == {
        "id",
        "history",
        "canary",
        "primary",
        "harmful",
        "step_seconds",
    }
    for sc in scenarios:
        a = key[sc.id]
        # An opaque hash: "sc-" and 12 hex digits, so no kind, series or dataset name (they hold
        # letters beyond a-f) can be spelt in it. (Testing that "bad" is absent would test luck:
        # b, a and d are hex digits.)
        assert re.fullmatch(r"sc-[0-9a-f]{12}", sc.id), sc.id
        assert a.series not in sc.id and a.dataset not in sc.id
        assert sc.harmful in ("increase", "decrease", "both")
    # bad and common-mode variants of an incident differ only in the primary
    ((bad, _),) = _by_kind(built, "bad", "ec2_cpu")
    ((cm, _),) = _by_kind(built, "common_mode", "ec2_cpu")
    np.testing.assert_array_equal(bad.canary, cm.canary)


def _simulate(setting: D.Setting, scenario: S.Scenario) -> D.Outcome:
    logs.configure("console", "error")
    return asyncio.run(D.run_one(setting, scenario, D.first_analysis_time()))


def test_static_t1_rolls_back_a_step_and_promotes_a_flat_series(
    built: tuple[list[S.Scenario], dict[str, S.Answer]],
) -> None:
    (setting,) = D.static_settings(thresholds=[1], margins=[0.25])
    ((bad, a),) = _by_kind(built, "bad", "ec2_cpu")
    out = _simulate(setting, bad)
    assert out.result == "rolled_back"
    assert out.r == (a.k or 0) + 1  # TTD = r - k = T
    assert not any(out.failed[: a.k])
    good, _ = _by_kind(built, "good", "ec2_cpu")[0]
    out = _simulate(setting, good)
    assert out.result == "promoted" and out.eval_ticks == S.N_ITERATIONS and not any(out.failed)


def test_static_range_from_history() -> None:
    hist = np.array([1.0, 2.0, np.nan, 3.0])
    assert D.static_range(hist, "increase", 0.5) == {"max": pytest.approx(2.98 * 1.5)}
    assert D.static_range(-hist, "increase", 0.5)["max"] == pytest.approx(-1.02 * 0.5)
    both = D.static_range(hist, "both", 0.1)
    assert set(both) == {"min", "max"} and both["min"] == pytest.approx(1.02 * 0.9)


def test_the_outlier_detector_marks_gross_harmful_outliers_only() -> None:
    rng = np.random.default_rng(3)
    quiet = 100.0 + rng.normal(0.0, 1.0, 400)
    rows = range(200, 212)
    assert not S.hampel_marks(quiet, rows, 168, "both")
    spiked = quiet.copy()
    spiked[205] = 130.0  # ~30 standard deviations up
    assert S.hampel_marks(spiked, rows, 168, "increase")
    assert S.hampel_marks(spiked, rows, 168, "both")
    assert not S.hampel_marks(spiked, rows, 168, "decrease")  # harmless direction
    assert not S.hampel_marks(spiked, range(300, 312), 168, "increase")  # outside the rows
    dipped = quiet.copy()
    dipped[205] = 70.0
    assert S.hampel_marks(dipped, rows, 168, "decrease")
    assert not S.hampel_marks(dipped, rows, 168, "increase")
    # a flat neighbourhood has no spread: nothing can be measured against it
    flat = np.full(400, 5.0)
    flat[205] = 50.0
    assert not S.hampel_marks(flat, rows, 168, "increase")
    with_gaps = spiked.copy()
    with_gaps[150:205] = np.nan  # missing rows are left out, not read as values
    assert S.hampel_marks(with_gaps, rows, 168, "increase")


def test_marked_good_windows_are_scored_apart_never_instead() -> None:
    def good(i: int, marked: bool) -> tuple[S.Answer, Outcome]:
        answer = S.Answer(
            id=f"g{i}",
            kind="good",
            dataset="d",
            series=f"s{i}",
            metric_kind="latency",
            harmful="increase",
            interval_group="1h",
            step_seconds=3600.0,
            start_row=0,
            period_rows=168,
            unlabelled_anomaly=marked,
        )
        result = "rolled_back" if marked else "promoted"
        return answer, Outcome(answer.id, "x", result, 3 if marked else None, 12, [False] * 12)

    scores = score_setting([good(0, True), good(1, False), good(2, False), good(3, False)])
    assert scores["good"]["false_rollback"]["hits"] == 1
    assert scores["good"]["false_rollback"]["n"] == 4
    assert scores["good_unmarked"]["false_rollback"]["hits"] == 0
    assert scores["good_unmarked"]["false_rollback"]["n"] == 3


def _two_incidents(root: Path) -> Path:
    """An hourly latency series (P = 168) with rises at rows 200 and 300: the second one's
    history [s - 168, o) holds the first."""
    lat = root / "msft" / "middle-tier-latency"
    lat.mkdir(parents=True)
    lines = ["TimeStamp,Value,Label"]
    for i in range(420):
        rise = 200 <= i < 205 or 300 <= i < 305
        ts = (START + i * HOUR).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{ts},{50.0 if rise else _pattern(i)},{int(rise)}")
    (lat / "lat-02.csv").write_text("\n".join(lines) + "\n")
    return root


def test_bad_scenarios_of_the_doc_as_written_are_the_ones_with_no_incident_in_history(
    tmp_path: Path,
) -> None:
    root = _two_incidents(tmp_path)
    _, key = S.build_scenarios(root, seed=7)
    marks = {a.onset_row: a.history_incident for a in key.values() if a.kind == "bad"}
    assert marks == {200: False, 300: True}
    assert {a.onset_row: a.history_incident for a in key.values() if a.kind == "common_mode"} == (
        marks
    )
    assert all(a.history_incident is None for a in key.values() if a.kind in ("good", "aa"))
    # the as-written set is what the doc's own rule (the whole history onset-free) builds
    _, strict = S.build_scenarios(root, seed=7, history_onset_free=None)
    assert sorted(a.id for a in strict.values() if a.kind == "bad") == sorted(
        a.id for a in key.values() if a.kind == "bad" and not a.history_incident
    )


def test_the_doc_as_written_is_scored_beside_the_wider_set_never_instead() -> None:
    def bad(i: int, incident: bool, detected: bool) -> tuple[S.Answer, Outcome]:
        answer = S.Answer(
            id=f"b{i}",
            kind="bad",
            dataset="d",
            series=f"s{i}",
            metric_kind="latency",
            harmful="increase",
            interval_group="1h",
            step_seconds=3600.0,
            start_row=0,
            period_rows=168,
            k=0,
            history_incident=incident,
        )
        result = "rolled_back" if detected else "promoted"
        return answer, Outcome(answer.id, "x", result, 2 if detected else None, 12, [False] * 12)

    scores = score_setting([bad(0, True, False), bad(1, True, False), bad(2, False, True)])
    assert (scores["bad"]["detection"]["hits"], scores["bad"]["detection"]["n"]) == (1, 3)
    det = scores["bad_as_written"]["detection"]
    assert (det["hits"], det["n"]) == (1, 1)
    assert scores["bad_as_written"]["ttd_intervals"]["median"] == 2


def test_wilson_interval() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_cli_writes_report(data_dir: Path, tmp_path: Path) -> None:
    code = D.main(
        [
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path),
            "--workers",
            "1",
            "--only",
            "static T=1 m=0.25",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "detection.json").read_text())
    sc = report["settings"]["static T=1 m=0.25"]
    assert sc["bad"]["detection"]["rate"] == 1.0
    assert sc["good"]["false_rollback"]["hits"] == 0
    assert sc["common_mode"]["rate"] == 0.0  # a static gate rolls back a shared incident
    assert report["counts"]["good"] == 18
    md = (tmp_path / "detection.md").read_text()
    assert "| static T=1 m=0.25 | 100.0" in md
    # the second scoring is reported beside the first
    assert sc["good_unmarked"]["false_rollback"]["n"] == report["unmarked_good"] <= 18
    assert "Second scoring, beside the first" in md
    assert re.search(r"\| static T=1 m=0\.25 \| 0\.0 \[0\.0, [0-9.]+\] \| 0\.0 \[", md)
    # and the bad scenarios of §3.2 as written beside the wider set (here the same: no history
    # of the synthetic series holds an earlier incident of a bad one)
    assert report["counts_as_written"]["bad"] == report["counts"]["bad"] == 2
    assert sc["bad_as_written"]["detection"]["rate"] == 1.0
    assert "The bad scenarios of §3.2 as written" in md
    assert "Best detection at a false rollback rate <= X, §3.2 as written:" in md


def test_a_static_setting_decides_an_a_a_or_common_mode_twin_as_its_twin(
    built: tuple[list[S.Scenario], dict[str, S.Answer]],
) -> None:
    # The benchmark reuses the twin's outcome for static settings instead of simulating the
    # A/A and common-mode scenarios: that is only sound if simulating them gives the same.
    scenarios, key = built
    by_id = {s.id: s for s in scenarios}
    twinned = [s for s in scenarios if key[s.id].twin is not None]
    assert {key[s.id].kind for s in twinned} == {"aa", "common_mode"}
    settings = D.static_settings(thresholds=[1, 2], margins=[0.1, 0.5])
    twins = {s.id: key[s.id].twin or "" for s in twinned}
    for scenario in twinned:
        twin = by_id[twins[scenario.id]]
        np.testing.assert_array_equal(scenario.canary, twin.canary)
        np.testing.assert_array_equal(scenario.history, twin.history)
    simulated = {(st.name, s.id): _simulate(st, s) for s in twinned for st in settings}
    # The benchmark skips the twinned scenarios and copies their twins' outcomes: every copy
    # is, field for field, what simulating the scenario itself gives.
    outcomes = D.run_all(
        settings,
        scenarios,
        D.first_analysis_time(),
        skip={s.name: {i for i, sc in enumerate(scenarios) if key[sc.id].twin} for s in settings},
    )
    assert not {(o.setting, o.id) for o in outcomes} & set(simulated)  # really skipped
    reused = D.reused_twin_outcomes(outcomes, twins, skip_settings={s.name for s in settings})
    assert {(o.setting, o.id): o for o in reused} == simulated


def test_a_no_data_policy_variant_decides_as_simulated_where_it_reuses_its_base() -> None:
    # The benchmark copies the onNoData-unset setting's outcome for its onNoData-inconclusive
    # variant wherever the unset run had no NO_DATA or INCONCLUSIVE check: sound only if
    # simulating the variant gives the same, and the others (gaps, a short file) are simulated.
    rng = np.random.default_rng(3)
    level = 100.0 + rng.normal(0.0, 1.0, 200)
    gappy = level[:20].copy()
    gappy[[3, 4, 9]] = np.nan
    raised = level[:20].copy()
    raised[5:] *= 3.0
    scenarios = [
        S.Scenario("flat", level[:120], level[120:140], level[140:160], "increase", 60.0),
        S.Scenario("raised", level[:120], raised, level[140:160], "increase", 60.0),
        S.Scenario("gaps", level[:120], gappy, level[140:160], "increase", 60.0),
        S.Scenario("short", level[:120], level[120:126], level[140:146], "increase", 60.0),
    ]
    grid = {"onNoData": [D.UNSET, "inconclusive"], "window": ["24h"]}
    settings = D.judge_settings(thresholds=[1], grid=grid)
    bases = D.policy_bases(settings)
    assert len(bases) == 1
    variant = next(s for s in settings if s.name in bases)
    base = next(s for s in settings if s.name == bases[variant.name])

    t1 = D.first_analysis_time()
    base_outcomes = D.run_all([base], scenarios, t1)
    assert {o.id: o.policy_free for o in base_outcomes} == {
        "flat": True,
        "raised": True,
        "gaps": False,
        "short": True,  # the run ends with the recording, before any tick lacks data
    }
    got = D.run_policy_variants([variant], bases, base_outcomes, scenarios, t1, workers=1)
    simulated = D.run_all([variant], scenarios, t1)
    assert sorted(got, key=lambda o: o.id) == sorted(simulated, key=lambda o: o.id)
    assert {o.id: o.result for o in got}["raised"] == "rolled_back"
    # where the base saw no data, the policy changes the run: copying it would have been wrong
    gaps = {o.setting: o for o in [*base_outcomes, *simulated] if o.id == "gaps"}
    assert gaps[base.name].result != gaps[variant.name].result
