"""Recordings parse exactly as interfaces.md §2 says, and bad input is named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import config
from analysis import LOOKBACK_SECONDS, Recording, load_recording, parse_csv, parse_json

CSV = """\
time,target,metric,value
0,canary,request-success-rate,99.95
0,canary,request-duration,212
0,primary,request-success-rate,99.97
60,canary,request-success-rate,99.91
120,canary,request-success-rate,
180,canary,request-success-rate,NaN
240,canary,request-success-rate,1e308
60,webhook,load-test,0
180,webhook,load-test,1
"""

JSON = {
    "version": 1,
    "series": [
        {
            "target": "canary",
            "metric": "request-success-rate",
            "samples": [[0, 99.95], [60, 99.91], [120, None], [180, None], [240, 1e308]],
        },
        {"target": "canary", "metric": "request-duration", "samples": [[0, 212]]},
        {"target": "primary", "metric": "request-success-rate", "samples": [[0, 99.97]]},
        {"target": "webhook", "metric": "load-test", "samples": [[60, 0], [180, 1]]},
    ],
}


def _problems(exc: config.SpecError) -> list[str]:
    return [str(p) for p in exc.problems]


def _csv_error(text: str) -> config.SpecError:
    with pytest.raises(config.SpecError) as caught:
        parse_csv(text, source="rec.csv")
    return caught.value


def _json_error(doc: object) -> config.SpecError:
    with pytest.raises(config.SpecError) as caught:
        parse_json(json.dumps(doc), source="rec.json")
    return caught.value


def test_csv_and_json_encodings_carry_the_same_content() -> None:
    from_csv = parse_csv(CSV)
    from_json = parse_json(json.dumps(JSON))
    keys = [
        ("canary", "request-success-rate"),
        ("canary", "request-duration"),
        ("primary", "request-success-rate"),
        ("canary", "missing"),
    ]
    for t in (-1, 0, 30, 60, 119, 120, 180, 240, 500, 541):
        for key in keys:
            assert from_csv.value_at(*key, t) == from_json.value_at(*key, t), (key, t)
        assert from_csv.webhook_ok("load-test", t) == from_json.webhook_ok("load-test", t)
    assert from_csv.last_time == from_json.last_time == 240
    assert from_csv.keys == from_json.keys
    assert from_csv.metrics("canary") == {"request-success-rate", "request-duration"}
    assert from_json.metrics("primary") == {"request-success-rate"}
    assert from_csv.webhook_names == from_json.webhook_names == {"load-test"}


def test_values_over_time() -> None:
    rec = parse_csv(CSV)
    assert rec.value_at("canary", "request-success-rate", 0) == 99.95
    assert rec.value_at("canary", "request-success-rate", 59.9) == 99.95
    assert rec.value_at("canary", "request-success-rate", 60) == 99.91
    assert rec.value_at("canary", "request-success-rate", 120) is None  # empty = no data
    assert rec.value_at("canary", "request-success-rate", 180) is None  # NaN = no data
    assert rec.value_at("canary", "request-success-rate", 240) == 1e308  # huge but finite
    assert rec.value_at("primary", "request-success-rate", 10) == 99.97
    assert rec.value_at("canary", "request-success-rate", -1) is None  # before the start
    assert rec.value_at("canary", "unknown-metric", 0) is None


def test_samples_older_than_the_lookback_are_no_data() -> None:
    rec = parse_csv("time,target,metric,value\n0,canary,m,1\n")
    assert LOOKBACK_SECONDS == 300
    assert rec.value_at("canary", "m", 300) == 1
    assert rec.value_at("canary", "m", 300.5) is None


def test_columns_in_any_order_extra_columns_ignored_rows_in_any_order() -> None:
    text = "value,note,metric,time,target\n5,later,m,60,canary\n3,,m,0,canary\n\n"
    rec = parse_csv(text)
    assert rec.value_at("canary", "m", 0) == 3
    assert rec.value_at("canary", "m", 61) == 5


def test_rfc3339_times_are_relative_to_the_first_row() -> None:
    text = (
        "time,target,metric,value\n"
        "2026-03-01T10:00:00Z,canary,m,1\n"
        "2026-03-01T12:01:30+02:00,canary,m,2\n"  # 10:01:30Z, i.e. t=90
        "2026-03-01T10:00:30.5z,canary,m,3\n"
    )
    rec = parse_csv(text)
    assert rec.value_at("canary", "m", 30) == 1
    assert rec.value_at("canary", "m", 30.5) == 3
    assert rec.value_at("canary", "m", 90) == 2
    assert rec.last_time == 90


def test_webhook_rows_and_defaults() -> None:
    rec = parse_csv(CSV)
    assert rec.webhook_ok("load-test", 0)  # no row yet: answers 2xx
    assert not rec.webhook_ok("load-test", 60)
    assert not rec.webhook_ok("load-test", 179)
    assert rec.webhook_ok("load-test", 180)
    assert rec.webhook_ok("unrecorded", 100, config.HookType.PRE_ROLLOUT)
    assert rec.webhook_ok("unrecorded", 100, "confirm-promotion")
    # a rollback hook without rows answers an error: it never signals a rollback
    assert not rec.webhook_ok("unrecorded", 100, config.HookType.ROLLBACK)
    assert not rec.webhook_ok("unrecorded", 100, "rollback")
    rows = Recording({}, {"abort": [(30.0, True)]})
    assert not rows.webhook_ok("abort", 0, "rollback")
    assert rows.webhook_ok("abort", 30, "rollback")


def test_empty_recording_has_no_data() -> None:
    rec = parse_csv("time,target,metric,value\n")
    assert rec.last_time == 0
    assert rec.value_at("canary", "m", 0) is None


def test_the_same_sample_written_twice_is_read_once(tmp_path: Path) -> None:
    # A recording assembled from overlapping exports repeats rows: harmless when they agree.
    path = tmp_path / "r.csv"
    path.write_text(
        "time,target,metric,value\n0,canary,m,1\n60,canary,m,2\n60,canary,m,2\n"
        "60,primary,m,\n60,primary,m,nan\n"
    )
    recording = load_recording(path)
    assert recording.samples("canary", "m", 0, 60) == ([0.0, 60.0], [1.0, 2.0])
    assert recording.samples("primary", "m", 0, 60) == ([60.0], [None])


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("time,target,metric,value\n0,canry,m,1\n", "line 2", "unknown target 'canry'"),
        ("time,target,metric,value\n0,canary,m,abc\n", "line 2", "'abc' is not a number"),
        ("time,target,metric,value\n0,canary,m,1_0\n", "line 2", "is not a number"),
        ("time,target,metric\n0,canary,m\n", "line 1", "lacks column(s) value"),
        ("time,target,time,metric,value\n", "line 1", "names column 'time' twice"),
        ("", "line 1", "empty file"),
        ("time,target,metric,value\nsoon,canary,m,1\n", "line 2", "neither seconds"),
        ("time,target,metric,value\nnan,canary,m,1\n", "line 2", "not a finite number"),
        ("time,target,metric,value\n0,canary,,1\n", "line 2", "must not be empty"),
        ("time,target,metric,value\n0,canary\n", "line 2", "expected at least 4 fields"),
        ("time,target,metric,value\n0,webhook,hook,2\n", "line 2", "need 1 (answers 2xx) or 0"),
        ("time,target,metric,value\n0,webhook,hook,\n", "line 2", "got nothing"),
        (
            "time,target,metric,value\n0,canary,m,1\n0,canary,m,2\n",
            "line 3",
            "two different samples for canary/m at t=0s (2 here, 1 at line 2): keep one",
        ),
        (
            "time,target,metric,value\n0,canary,m,1\n2026-03-01T10:00:00Z,canary,m,2\n",
            "line 3",
            "use one form",
        ),
        (
            "time,target,metric,value\n2026-13-01T10:00:00Z,canary,m,1\n",
            "line 2",
            "not a valid RFC 3339",
        ),
        (
            "time,target,metric,value\n2026-03-01T10:00:00,canary,m,1\n",
            "line 2",
            "neither seconds",  # no timezone: not RFC 3339
        ),
    ],
)
def test_bad_csv_is_rejected_naming_file_and_line(text: str, where: str, says: str) -> None:
    error = _csv_error(text)
    assert error.source == "rec.csv"
    message = str(error)
    assert message.startswith(f"rec.csv: {where}: "), message
    assert says in message


def test_every_bad_csv_line_is_reported_at_once() -> None:
    error = _csv_error("time,target,metric,value\n0,canary,m,x\n60,prim,m,1\n120,canary,m,1\n")
    assert _problems(error) == [
        "line 2: value: 'x' is not a number (write a float; empty, NaN or nan for no data)",
        "line 3: target: unknown target 'prim'; expected canary, primary or webhook",
    ]


def test_a_json_series_given_twice_is_read_as_one(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    export = {"target": "canary", "metric": "m", "samples": [[0, 1], [60, 2]]}
    later = {"target": "canary", "metric": "m", "samples": [[60, 2], [120, 3]]}
    path.write_text(json.dumps({"version": 1, "series": [export, later]}))
    recording = load_recording(path)
    assert recording.samples("canary", "m", 0, 120) == ([0.0, 60.0, 120.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("doc", "where", "says"),
    [
        ({"series": []}, "version", "missing"),
        ({"version": 2, "series": []}, "version", "unsupported version 2"),
        ({"version": True, "series": []}, "version", "unsupported version True"),
        ({"version": 1}, "series", "is missing"),
        ({"version": 1, "series": {}}, "series", "must be a list"),
        ({"version": 1, "series": [1]}, "series[0]", "must be an object"),
        (
            {"version": 1, "series": [{"target": "canery", "metric": "m", "samples": []}]},
            "series[0].target",
            "unknown target 'canery'",
        ),
        (
            {"version": 1, "series": [{"target": "canary", "samples": []}]},
            "series[0].metric",
            "is missing",
        ),
        (
            {"version": 1, "series": [{"target": "canary", "metric": "m"}]},
            "series[0].samples",
            "is missing",
        ),
        (
            {"version": 1, "series": [{"target": "canary", "metric": "m", "samples": [[0]]}]},
            "series[0].samples[0]",
            "must be a [time, value] pair",
        ),
        (
            {
                "version": 1,
                "series": [{"target": "canary", "metric": "m", "samples": [[0, "99"]]}],
            },
            "series[0].samples[0][1]",
            "must be a number or null",
        ),
        (
            {
                "version": 1,
                "series": [{"target": "canary", "metric": "m", "samples": [[True, 1]]}],
            },
            "series[0].samples[0][0]",
            "time must be a number of seconds or an RFC 3339 string",
        ),
        (
            {
                "version": 1,
                "series": [{"target": "webhook", "metric": "h", "samples": [[0, 0.5]]}],
            },
            "series[0].samples[0][1]",
            "need 1 (answers 2xx) or 0",
        ),
        (
            {
                "version": 1,
                "series": [
                    {"target": "canary", "metric": "m", "samples": [[0, 1]]},
                    {"target": "canary", "metric": "m", "samples": [[0, 2]]},
                ],
            },
            "series[1].samples[0]",
            "two different samples for canary/m at t=0s (2 here, 1 at series[0].samples[0])",
        ),
    ],
)
def test_bad_json_is_rejected_naming_the_json_path(doc: object, where: str, says: str) -> None:
    error = _json_error(doc)
    message = str(error)
    assert message.startswith(f"rec.json: {where}: "), message
    assert says in message


def test_json_numbers_beyond_float_range_are_refused_not_a_crash() -> None:
    doc = {"version": 1, "series": [{"target": "canary", "metric": "m", "samples": []}]}
    doc["series"][0]["samples"] = [[0, 10**400]]  # type: ignore[index]
    message = str(_json_error(doc))
    assert message.startswith("rec.json: series[0].samples[0][1]: value: infinite"), message
    assert "value must be a finite number" in message
    doc["series"][0]["samples"] = [[10**400, 1]]  # type: ignore[index]
    assert "not a finite number" in str(_json_error(doc))


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(config.SpecError, match=r"rec.json: line 2, column 1: invalid JSON"):
        parse_json('{"version": 1,\n}', source="rec.json")


def test_json_rfc3339_times() -> None:
    doc = {
        "version": 1,
        "series": [
            {
                "target": "canary",
                "metric": "m",
                "samples": [["2026-03-01T10:00:00Z", 1], ["2026-03-01T10:02:00Z", 2]],
            }
        ],
    }
    rec = parse_json(json.dumps(doc))
    assert rec.value_at("canary", "m", 119) == 1
    assert rec.value_at("canary", "m", 120) == 2


def test_load_recording_picks_the_format_by_extension(tmp_path: Path) -> None:
    csv_path = tmp_path / "rec.csv"
    csv_path.write_text("\ufefftime,target,metric,value\r\n0,canary,m,1\r\n", encoding="utf-8")
    assert load_recording(csv_path).value_at("canary", "m", 0) == 1  # BOM and CRLF are fine
    json_path = tmp_path / "rec.JSON"
    json_path.write_text(json.dumps(JSON), encoding="utf-8")
    assert load_recording(json_path).value_at("canary", "request-duration", 0) == 212


def test_load_recording_errors_name_the_file(tmp_path: Path) -> None:
    text_path = tmp_path / "rec.txt"
    text_path.write_text("x", encoding="utf-8")
    with pytest.raises(config.SpecError, match=r"rec\.txt: unknown recording format '\.txt'"):
        load_recording(text_path)
    with pytest.raises(config.SpecError, match=r"missing\.csv: file not found"):
        load_recording(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,target,metric,value\n0,canary,m,oops\n", encoding="utf-8")
    with pytest.raises(config.SpecError) as caught:
        load_recording(bad)
    assert str(caught.value).startswith(f"{bad}: line 2: value:")


def test_negative_times_are_history_that_a_static_check_never_sees() -> None:
    text = "time,target,metric,value\n-600,primary,m,5\n-60,primary,m,7\n60,primary,m,9\n"
    recording = parse_csv(text)
    # A Flagger-style check at t >= 0 sees the latest sample within the 5-minute lookback only.
    assert recording.value_at("primary", "m", 0) == 7
    assert recording.value_at("primary", "m", 60) == 9
    assert recording.samples("primary", "m", -3600, 60) == ([-600.0, -60.0, 60.0], [5, 7, 9])
    assert recording.samples("primary", "m", -100, 0) == ([-60.0], [7])
    as_json = parse_json(
        '{"version": 1, "series": [{"target": "primary", "metric": "m", '
        '"samples": [[-120, 1.5], [0, 2]]}]}'
    )
    assert as_json.samples("primary", "m", -1e9, 1e9) == ([-120.0, 0.0], [1.5, 2.0])


def test_timestamps_before_the_first_row_are_history_at_negative_times() -> None:
    # the first row is the start (interfaces §2); an earlier one is history before it
    text = (
        "time,target,metric,value\n"
        "2026-01-01T00:10:00Z,canary,m,1\n"
        "2026-01-01T00:00:00Z,primary,m,3\n"
        "2026-01-01T00:11:00Z,primary,m,2\n"
    )
    recording = parse_csv(text)
    assert recording.samples("primary", "m", -1e9, 1e9) == ([-600.0, 60.0], [3.0, 2.0])
    assert recording.samples("canary", "m", -1e9, 1e9) == ([0.0], [1.0])
