"""Recordings: what a canary's metric queries (and webhooks) answered over time (interfaces.md §2).

Two encodings with the same content, chosen by file extension:

* CSV (``.csv``), long format: a header row naming ``time``, ``target``, ``metric`` and ``value``
  in any order (extra columns ignored), then one sample per row;
* JSON (``.json``): ``{"version": 1, "series": [{"target", "metric", "samples": [[t, v], ...]}]}``.

``time`` is seconds since the start of the recording, or an RFC 3339 timestamp (then the first
sample's time is the start). ``target`` is ``canary``, ``primary`` or ``webhook``; a value is a
finite float, and empty / ``NaN`` / ``nan`` / ``null`` mean the query returned no data (an infinite
value is refused: it must never pass a check). Webhook rows hold ``1`` (answers 2xx) or ``0``
(answers an error) from that time on. JSON nested deeper than ``MAX_JSON_DEPTH`` is refused.

Every fault in a file is reported at once in a ``config.SpecError`` naming the file and the line
(CSV) or JSON path and saying what would be valid. Reading a file is the only I/O here.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from config import HookType, Problem, SpecError

#: Prometheus' default lookback: an instant query sees no sample older than this.
LOOKBACK_SECONDS = 300.0

#: Values of the ``target`` column.
TARGETS = ("canary", "primary", "webhook")
_QUERY_TARGETS = ("canary", "primary")
_REQUIRED_COLUMNS = ("time", "target", "metric", "value")
_MAX_PROBLEMS = 50  # a broken 10 000-line file should not print 10 000 lines

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_INFINITIES = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
#: Deepest nesting a JSON recording may have; the format itself needs 5 levels.
MAX_JSON_DEPTH = 64
#: JSON integers longer than this are read as floats (Python refuses to convert > 4300 digits).
_JSON_INT_DIGITS = 100
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class Recording:
    """Recorded query answers per (target, metric) and webhook answers per webhook name.

    Immutable after construction; samples may be given in any order (they are sorted by time). A
    value of None or NaN is "no data". Built by ``load_recording`` / ``parse_csv`` /
    ``parse_json``, or directly in tests.
    """

    __slots__ = ("_hooks", "_last", "_series", "source")

    def __init__(
        self,
        series: Mapping[tuple[str, str], Iterable[tuple[float, float | None]]],
        webhooks: Mapping[str, Iterable[tuple[float, bool]]] | None = None,
        *,
        source: str = "",
    ) -> None:
        self.source = source
        self._series: dict[tuple[str, str], tuple[list[float], list[float | None]]] = {}
        last = 0.0
        for key, samples in series.items():
            ordered = sorted(samples, key=lambda s: s[0])
            times = [float(t) for t, _ in ordered]
            values = [None if v is None or math.isnan(v) else float(v) for _, v in ordered]
            self._series[key] = (times, values)
            if times:
                last = max(last, times[-1])
        self._hooks: dict[str, tuple[list[float], list[bool]]] = {}
        for name, rows in (webhooks or {}).items():
            ordered_rows = sorted(rows, key=lambda r: r[0])
            self._hooks[name] = (
                [float(t) for t, _ in ordered_rows],
                [ok for _, ok in ordered_rows],
            )
            if ordered_rows:
                last = max(last, float(ordered_rows[-1][0]))
        self._last = last

    @property
    def last_time(self) -> float:
        """Time of the last sample or webhook row, in seconds (0 for an empty recording)."""
        return self._last

    @property
    def keys(self) -> frozenset[tuple[str, str]]:
        """Every (target, metric) with a series."""
        return frozenset(self._series)

    @property
    def webhook_names(self) -> frozenset[str]:
        return frozenset(self._hooks)

    def metrics(self, target: str) -> frozenset[str]:
        """Names of the metrics with a series for ``target`` ("canary" or "primary")."""
        return frozenset(metric for t, metric in self._series if t == target)

    def value_at(self, target: str, metric: str, t: float) -> float | None:
        """What the query of ``metric`` on ``target`` returns at time ``t``; None means no data.

        The latest sample with time <= t, unless it is more than LOOKBACK_SECONDS older than t.
        """
        found = self._series.get((target, metric))
        if found is None:
            return None
        times, values = found
        index = bisect.bisect_right(times, t) - 1
        if index < 0 or t - times[index] > LOOKBACK_SECONDS:
            return None
        return values[index]

    def samples(
        self, target: str, metric: str, start: float, end: float
    ) -> tuple[list[float], list[float | None]]:
        """Every sample of (target, metric) with ``start <= time <= end``, in time order; None is
        no data. Samples before time 0 are history (what a comparative judge reads)."""
        found = self._series.get((target, metric))
        if found is None:
            return [], []
        times, values = found
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_right(times, end)
        return times[lo:hi], values[lo:hi]

    def webhook_answer(self, name: str, t: float) -> tuple[bool, float] | None:
        """The recorded answer of webhook ``name`` at ``t`` (ok, since when), or None without one.

        Webhook rows hold from their time on; no lookback applies.
        """
        found = self._hooks.get(name)
        if found is None:
            return None
        times, answers = found
        index = bisect.bisect_right(times, t) - 1
        if index < 0:
            return None
        return answers[index], times[index]

    def webhook_ok(self, name: str, t: float, hook_type: HookType | str = HookType.ROLLOUT) -> bool:
        """True when the webhook answers 2xx at ``t``.

        Without a recorded answer every webhook answers 2xx, except a rollback webhook, which
        answers an error (so it does not signal a rollback).
        """
        answer = self.webhook_answer(name, t)
        if answer is not None:
            return answer[0]
        kind = hook_type if isinstance(hook_type, HookType) else HookType(hook_type or "rollout")
        return kind is not HookType.ROLLBACK


def load_recording(path: str | Path) -> Recording:
    """Read a recording; the extension (.csv or .json) picks the format. Raise SpecError."""
    source = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise SpecError(
            Problem(
                "", f"unknown recording format {suffix or '(no extension)'!r}; use .csv or .json"
            ),
            source=source,
        )
    try:
        # utf-8-sig: spreadsheets like to prepend a byte-order mark to CSV exports.
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise SpecError(Problem("", "file not found"), source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem("", f"cannot read file: {exc}"), source=source) from None
    if suffix == ".csv":
        return parse_csv(text, source=source)
    return parse_json(text, source=source)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def parse_csv(text: str, *, source: str = "<csv>") -> Recording:
    """Parse the CSV encoding; raise SpecError listing every bad line."""
    builder = _Builder(source)
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    columns: dict[str, int] | None = None
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            if columns is None:
                columns = _header(row, where, builder)
                if columns is None:
                    break
                continue
            _csv_row(row, columns, where, builder)
    except csv.Error as exc:
        builder.problem(f"line {reader.line_num}", f"malformed CSV: {exc}")
    if columns is None and not builder.problems:
        builder.problem(
            "line 1", "empty file: expected a header row naming time, target, metric and value"
        )
    return builder.build()


def _header(row: Sequence[str], where: str, builder: _Builder) -> dict[str, int] | None:
    names = [cell.strip().lower() for cell in row]
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in _REQUIRED_COLUMNS:
            if name in columns:
                builder.problem(where, f"header names column {name!r} twice")
                return None
            columns[name] = index
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        builder.problem(
            where,
            f"header lacks column(s) {', '.join(missing)}; the first row must name time, target, "
            f"metric and value (any order), got {','.join(row)!r}",
        )
        return None
    return columns


def _csv_row(row: Sequence[str], columns: Mapping[str, int], where: str, builder: _Builder) -> None:
    width = max(columns.values()) + 1
    if len(row) < width:
        builder.problem(where, f"expected at least {width} fields like the header, got {len(row)}")
        return
    time_text, target, metric, value = (row[columns[c]].strip() for c in _REQUIRED_COLUMNS)
    builder.add(_Where.same(where), time_text, target, metric, value)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def parse_json(text: str, *, source: str = "<json>") -> Recording:
    """Parse the JSON encoding; raise SpecError naming the JSON path of every fault."""
    builder = _Builder(source)
    too_deep = _too_deep(text)
    if too_deep is not None:
        builder.problem(
            too_deep, f"nested more than {MAX_JSON_DEPTH} levels deep; a recording needs 5"
        )
        return builder.build()
    try:
        doc = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        builder.problem(f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}")
        return builder.build()
    except RecursionError:  # only if the stack is already deep: _too_deep bounds the nesting
        builder.problem("", f"nested too deeply to read (more than {MAX_JSON_DEPTH} levels?)")
        return builder.build()
    if not isinstance(doc, dict):
        builder.problem("", 'must be an object {"version": 1, "series": [...]}')
        return builder.build()
    version = doc.get("version")
    if "version" not in doc:
        builder.problem("version", "required field is missing; expected 1")
    elif isinstance(version, bool) or version != 1:
        builder.problem("version", f"unsupported version {version!r}; expected 1")
    series = doc.get("series")
    if not isinstance(series, list):
        what = "is missing" if "series" not in doc else f"must be a list, got {_kind(series)}"
        builder.problem("series", what)
        return builder.build()
    for i, entry in enumerate(series):
        path = f"series[{i}]"
        if not isinstance(entry, dict):
            builder.problem(
                path, f'must be an object {{"target", "metric", "samples"}}, got {_kind(entry)}'
            )
            continue
        target = _json_string(entry, "target", path, builder)
        metric = _json_string(entry, "metric", path, builder)
        if target is not None and target not in TARGETS:
            builder.problem(
                f"{path}.target", f"unknown target {target!r}; expected canary, primary or webhook"
            )
            target = None
        if metric == "":
            builder.problem(f"{path}.metric", "must not be empty (the metric or webhook name)")
            metric = None
        samples = entry.get("samples")
        if not isinstance(samples, list):
            what = (
                "is missing" if "samples" not in entry else f"must be a list, got {_kind(samples)}"
            )
            builder.problem(f"{path}.samples", what)
            continue
        if target is None or metric is None:
            continue  # reported once above, not once per sample
        # A series given twice (exports pieced together) is read as one: its samples are
        # checked one by one, as CSV rows are (the same sample twice is read once).
        for j, sample in enumerate(samples):
            where = f"{path}.samples[{j}]"
            if not isinstance(sample, list) or len(sample) != 2:
                builder.problem(where, f"must be a [time, value] pair, got {_short(sample)}")
                continue
            time_value, raw = sample
            time_text = _json_time(time_value, f"{where}[0]", builder)
            if time_text is None:
                continue
            value_text = _json_value(raw, f"{where}[1]", builder)
            if value_text is None:
                continue
            builder.add(
                _Where(row=where, time=f"{where}[0]", value=f"{where}[1]"),
                time_text,
                target,
                metric,
                value_text,
            )
    return builder.build()


def _json_int(text: str) -> int | float:
    # Python refuses int() of more than 4300 digits; such a number is beyond float range anyway
    # and reads as infinite, which the value and time checks then refuse with its JSON path.
    return int(text) if len(text) <= _JSON_INT_DIGITS else float(text)


def _too_deep(text: str) -> str | None:
    """Line and column of the first bracket nested deeper than MAX_JSON_DEPTH, if any.

    Checked before parsing: Python's parser recurses once per level and would crash on a file of
    100 000 ``[`` (strings are skipped whole, so brackets inside them do not count)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    depth = 0
    for found in _JSON_TOKENS.finditer(text):
        token = found.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                start = found.start()
                line = text.count("\n", 0, start) + 1
                column = start - (text.rfind("\n", 0, start) + 1) + 1
                return f"line {line}, column {column}"
        elif token in ("]", "}"):
            depth = max(0, depth - 1)
    return None


def _json_string(entry: Mapping[str, Any], key: str, path: str, builder: _Builder) -> str | None:
    value = entry.get(key)
    if isinstance(value, str):
        return value.strip()
    what = "is missing" if key not in entry else f"must be a string, got {_kind(value)}"
    builder.problem(f"{path}.{key}", what)
    return None


def _json_time(value: Any, path: str, builder: _Builder) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    builder.problem(
        path, f"time must be a number of seconds or an RFC 3339 string, got {_short(value)}"
    )
    return None


def _json_value(value: Any, path: str, builder: _Builder) -> str | None:
    if value is None:
        return ""
    if isinstance(value, float) and math.isinf(value):
        builder.problem(
            path,
            "value: infinite (Infinity, or a number beyond float range); value must be a "
            "finite number, or null/NaN for no data",
        )
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    builder.problem(path, f"value must be a number or null (no data), got {_short(value)}")
    return None


def _number_text(value: float) -> str:
    # JSON integers are unbounded in Python; one beyond float range is infinite (then refused).
    try:
        return repr(float(value))
    except OverflowError:
        return "inf" if value > 0 else "-inf"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):  # NaN is fine; these are runaway values
        text = _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Shared row validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a row's fields sit: one CSV line, or the JSON paths of a sample's parts."""

    row: str
    time: str
    value: str

    @classmethod
    def same(cls, where: str) -> _Where:
        return cls(row=where, time=where, value=where)


class _Builder:
    """Collects validated samples and problems; both encodings feed rows through ``add``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.series: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
        self.hooks: dict[str, list[tuple[float, bool]]] = {}
        #: (target, metric, time) -> where the sample was read and its value
        self.seen: dict[tuple[str, str, float], tuple[str, float | None]] = {}
        self.time_form: str | None = None  # "seconds" or "RFC 3339", fixed by the first sample
        self.origin: datetime | None = None

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def add(self, where: _Where, time_text: str, target: str, metric: str, value: str) -> None:
        before = len(self.problems)
        t = self._time(where.time, time_text)
        if target not in TARGETS:
            self.problem(
                where.row, f"target: unknown target {target!r}; expected canary, primary or webhook"
            )
        if not metric:
            what = "webhook name" if target == "webhook" else "metric name"
            self.problem(where.row, f"metric: must not be empty (the {what})")
        parsed = self._value(where.value, target, value)
        if len(self.problems) > before or t is None:
            return
        earlier = self.seen.get((target, metric, t))
        if earlier is not None:
            row, value_before = earlier
            # The same sample written twice is harmless; two different answers are not.
            if value_before != parsed:
                self.problem(
                    where.row,
                    f"two different samples for {target}/{metric} at t={t:g}s "
                    f"({_shown(parsed)} here, {_shown(value_before)} at {row}): keep one",
                )
            return
        self.seen[(target, metric, t)] = (where.row, parsed)
        if target == "webhook":
            self.hooks.setdefault(metric, []).append((t, parsed == 1.0))
        else:
            self.series.setdefault((target, metric), []).append((t, parsed))

    def _time(self, where: str, text: str) -> float | None:
        if _NUMBER.fullmatch(text):
            form = "seconds"
            t = float(text)
        elif _RFC3339.fullmatch(text):
            form = "RFC 3339"
            stamp = _parse_rfc3339(text)
            if stamp is None:
                self.problem(where, f"time: {_clip(text)} is not a valid RFC 3339 timestamp")
                return None
            if self.origin is None:
                self.origin = stamp
            t = (stamp - self.origin).total_seconds()
        elif text.lower() in _INFINITIES or text.lower() == "nan":
            self.problem(where, f"time: {_clip(text)} is not a finite number of seconds")
            return None
        else:
            self.problem(
                where,
                f"time: {_clip(text)} is neither seconds since the start (e.g. 60) nor an RFC 3339 "
                "timestamp (e.g. 2026-01-02T15:04:05Z)",
            )
            return None
        if self.time_form is None:
            self.time_form = form
        elif form != self.time_form:
            self.problem(
                where,
                f"time: {_clip(text)} is in {form} but earlier samples use {self.time_form}; "
                "use one form",
            )
            return None
        if not math.isfinite(t):
            self.problem(where, f"time: {_clip(text)} is not a finite number")
            return None
        # With timestamps the first row is time 0 (interfaces §2); a row earlier than it is at a
        # negative time, history before the revision was applied, as negative seconds are.
        return t

    def _value(self, where: str, target: str, text: str) -> float | None:
        lowered = text.lower()
        if target == "webhook":
            if _NUMBER.fullmatch(text) and float(text) in (0.0, 1.0):
                return float(text)
            got = repr(text) if text else "nothing"
            self.problem(
                where,
                f"value: webhook rows need 1 (answers 2xx) or 0 (answers an error), got {got}",
            )
            return None
        if text == "" or lowered == "nan":
            return None
        if lowered in _INFINITIES or (_NUMBER.fullmatch(text) and not math.isfinite(float(text))):
            # A non-finite answer must never pass a check, so it is not a value at all.
            self.problem(
                where,
                f"value: {_clip(text)} is not finite; value must be a finite number, or "
                "empty/NaN for no data",
            )
            return None
        if _NUMBER.fullmatch(text):
            return float(text)
        self.problem(
            where,
            f"value: {_clip(text)} is not a number (write a float; empty, NaN or nan for no data)",
        )
        return None

    def build(self) -> Recording:
        if self.problems:
            shown = self.problems[:_MAX_PROBLEMS]
            if len(self.problems) > _MAX_PROBLEMS:
                shown.append(Problem("", f"... and {len(self.problems) - _MAX_PROBLEMS} more"))
            raise SpecError(shown, source=self.source)
        return Recording(self.series, self.hooks, source=self.source)


def _shown(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _clip(text: str) -> str:
    """``repr`` of a cell, cut short: a 5 000-digit number should not fill the terminal."""
    return repr(text) if len(text) <= 40 else repr(text[:30]) + f"... ({len(text)} characters)"


def _parse_rfc3339(text: str) -> datetime | None:
    found = _RFC3339.fullmatch(text)
    if found is None:
        return None
    date, clock, zone = found.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{clock}{zone}")
    except ValueError:
        return None
