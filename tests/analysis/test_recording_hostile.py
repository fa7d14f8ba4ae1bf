"""Hostile recordings: every malformed or abusive CSV / JSON file is a SpecError (exit 2) naming
the file and the line or JSON path, never a traceback; non-finite values are refused, since a
non-finite answer must never pass a check (README "Security and limits" → "Input bounds").
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config
from analysis import Recording, load_recording, parse_csv, parse_json
from analysis._recording import MAX_JSON_DEPTH
from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
FINITE = "value must be a finite number, or empty/NaN for no data"


def _simulate(recording: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(
        [
            "simulate",
            "--canary",
            str(EXAMPLES / "webhook-server.yaml"),
            "--recording",
            str(recording),
        ]
    )
    return code, capsys.readouterr().err


def _json(samples: str) -> str:
    return (
        '{"version": 1, "series": [{"target": "canary", "metric": "request-success-rate", '
        f'"samples": [{samples}]}}]}}'
    )


# ---------------------------------------------------------------------------------------------
# JSON the parser itself could not survive
# ---------------------------------------------------------------------------------------------


def test_json_nested_100000_deep_is_refused_naming_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, err = _simulate(path, capsys)
    assert code == 2
    assert err.startswith(
        f"{path}: line 1, column {MAX_JSON_DEPTH + 1}: nested more than {MAX_JSON_DEPTH} levels"
    ), err


def test_json_depth_counts_brackets_outside_strings_only() -> None:
    deep_string = json.dumps("[" * 200 + '"' + "{" * 200)
    text = f'{{"version": 1, "note": {deep_string}, "series": []}}'
    assert parse_json(text).keys == frozenset()
    # the object is level 1, so the last of MAX_JSON_DEPTH brackets is one level too many
    column = 4 + MAX_JSON_DEPTH
    with pytest.raises(config.SpecError, match=rf"<json>: line 3, column {column}: nested more"):
        parse_json('{"version": 1,\n "series":\n    ' + "[" * MAX_JSON_DEPTH + "]" * 64 + "}")


def test_json_nested_within_the_bound_is_an_ordinary_error() -> None:
    sample = "[" * (MAX_JSON_DEPTH - 5) + "1" + "]" * (MAX_JSON_DEPTH - 5)
    with pytest.raises(config.SpecError) as caught:
        parse_json(_json(sample), source="rec.json")
    assert str(caught.value).startswith("rec.json: series[0].samples[0]: must be a [time, value]")


def test_json_5000_digit_integer_value_is_refused_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.json"
    path.write_text(_json("[0, " + "9" * 5000 + "]"))
    code, err = _simulate(path, capsys)
    assert code == 2
    assert err.startswith(f"{path}: series[0].samples[0][1]: value: infinite"), err
    assert "value must be a finite number" in err
    assert len(err) < 300


def test_json_5000_digit_integer_time_is_refused_naming_the_path() -> None:
    with pytest.raises(config.SpecError) as caught:
        parse_json(_json("[" + "9" * 5000 + ", 1]"), source="rec.json")
    message = str(caught.value)
    assert message.startswith("rec.json: series[0].samples[0][0]: time: 'inf'"), message
    assert "not a finite number" in message


def test_json_ordinary_integers_are_still_exact() -> None:
    rec = parse_json(_json("[0, 12345678901234567890], [60, 3]"))
    assert rec.value_at("canary", "request-success-rate", 0) == float(12345678901234567890)
    assert rec.value_at("canary", "request-success-rate", 60) == 3


# ---------------------------------------------------------------------------------------------
# Non-finite values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["inf", "+Inf", "-inf", "Infinity", "-INFINITY", "1e400", "-1e999"]
)
def test_csv_non_finite_values_are_refused_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = tmp_path / "rec.csv"
    path.write_text(
        "time,target,metric,value\n"
        "0,canary,request-success-rate,99.9\n"
        f"60,canary,request-success-rate,{value}\n"
    )
    code, err = _simulate(path, capsys)
    assert code == 2
    assert err == f"{path}: line 3: value: {value!r} is not finite; {FINITE}\n"


@pytest.mark.parametrize(("column", "cell"), [("value", "٩٩"), ("time", "٦٠"), ("value", "9_9")])
def test_csv_numbers_in_other_scripts_are_refused_naming_the_line(column: str, cell: str) -> None:
    # Python reads "٩٩" as 99; no Prometheus answer or Go client writes it so
    row = f"{cell},canary,m,99" if column == "time" else f"60,canary,m,{cell}"
    with pytest.raises(config.SpecError) as info:
        parse_csv("time,target,metric,value\n0,canary,m,99\n" + row + "\n", source="r.csv")
    assert "line 3" in info.value.render() and column in info.value.render()


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "1e400", "-1e400"])
def test_json_non_finite_values_are_refused_naming_the_path(value: str) -> None:
    with pytest.raises(config.SpecError) as caught:
        parse_json(_json(f"[0, 1], [60, {value}]"), source="rec.json")
    message = str(caught.value)
    assert message == (
        "rec.json: series[0].samples[1][1]: value: infinite (Infinity, or a number beyond float "
        "range); value must be a finite number, or null/NaN for no data"
    )


def test_nan_is_still_no_data() -> None:
    csv_rec = parse_csv("time,target,metric,value\n0,canary,m,NaN\n60,canary,m,\n")
    json_rec = parse_json(
        '{"version": 1, "series": [{"target": "canary", "metric": "m", '
        '"samples": [[0, NaN], [60, null]]}]}'
    )
    for rec in (csv_rec, json_rec):
        assert rec.value_at("canary", "m", 0) is None
        assert rec.value_at("canary", "m", 60) is None


def test_a_huge_cell_is_quoted_short() -> None:
    with pytest.raises(config.SpecError) as caught:
        parse_csv("time,target,metric,value\n0,canary,m," + "9" * 5000 + "x\n", source="r.csv")
    assert str(caught.value).startswith("r.csv: line 2: value: '999")
    assert "(5001 characters) is not a number" in str(caught.value)
    assert len(str(caught.value)) < 300


# ---------------------------------------------------------------------------------------------
# Fuzz: everything parses or is a SpecError
# ---------------------------------------------------------------------------------------------

_CSV_PIECES = [
    *",\n\r\"' .-+eE",
    *"0123456789",
    "time",
    "target",
    "metric",
    "value",
    "time,target,metric,value\n",
    "canary",
    "primary",
    "webhook",
    "inf",
    "NaN",
    "Infinity",
    "1e400",
    "2026-01-02T15:04:05Z",
    "2026-02-30T15:04:05Z",
    "9" * 400,
    "\x00",
    "\ufeff",
]

_JSON_PIECES = [
    *'[]{}:," .-+eE',
    *"0123456789",
    '"version"',
    '"series"',
    '"target"',
    '"metric"',
    '"samples"',
    '"canary"',
    '"webhook"',
    '"m"',
    "null",
    "true",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    '"2026-01-02T15:04:05Z"',
    '"\\u0000"',
    "\\",
    "[" * 80,
]
_JSON_PREFIXES = [
    "",
    '{"version": 1, "series": [',
    '{"version": 1, "series": [{"target": "canary", "metric": "m", "samples": [',
]


def _parses_or_spec_error(parse: Any, text: str) -> None:
    try:
        recording = parse(text, source="fuzz")
    except config.SpecError as exc:
        assert exc.render().startswith("fuzz: ")
    else:
        assert isinstance(recording, Recording)
        for key in recording.keys:
            _, values = recording.samples(*key, -math.inf, math.inf)
            assert all(v is None or math.isfinite(v) for v in values)


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from(_CSV_PIECES), max_size=60).map("".join),
    header=st.booleans(),
)
def test_fuzz_csv_parses_or_is_a_spec_error(text: str, header: bool) -> None:
    _parses_or_spec_error(parse_csv, ("time,target,metric,value\n" if header else "") + text)


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from(_JSON_PIECES), max_size=60).map("".join),
    prefix=st.sampled_from(_JSON_PREFIXES),
)
def test_fuzz_json_text_parses_or_is_a_spec_error(text: str, prefix: str) -> None:
    _parses_or_spec_error(parse_json, prefix + text)


_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=4),
        st.sampled_from(["canary", "primary", "webhook", "m", "2026-01-02T15:04:05Z"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["version", "series", "target", "metric", "samples", "x"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON_VALUES)
def test_fuzz_json_structures_parse_or_are_a_spec_error(value: Any) -> None:
    _parses_or_spec_error(parse_json, json.dumps(value))
    _parses_or_spec_error(parse_json, json.dumps({"version": 1, "series": [value]}))


def test_load_recording_reads_a_hostile_file_as_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"series": ' + "[" * 10_000)
    with pytest.raises(config.SpecError, match=r"deep\.json: line 1, column \d+: nested"):
        load_recording(path)
