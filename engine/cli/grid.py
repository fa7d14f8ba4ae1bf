"""The sweep file: which Canary, which recordings, and the grid of settings to try on them.

```yaml
canary: webhook-server.yaml          # paths are relative to this file
templates: []                        # more files with MetricTemplates
recordings: [recordings/, extra.json]  # files, or folders (every .csv and .json in them)
labels: labels.csv                   # optional (see engine.cli.sweep for the convention)
falseRollbackLimit: 0.02             # optional
grid:                                # every combination of these values is one setting
  preset: [staging, production]
  analysis.threshold: [1, 2, 5]
  metrics[request-success-rate].thresholdRange.min: [95, 99]
settings:                            # optional: more settings, each one mapping
  - {analysis.stepWeights: [5, 10, 20, 50], analysis.stepWeight: null}
```

A key is ``preset``, ``analysis.<field>[.<field>...]`` (the Canary's ``spec.analysis``, with
Flagger's camelCase names) or ``metrics[<name>].<field>[.<field>...]`` (the analysis metric with
that name, after the preset has added its metrics). A value of ``null`` removes the field. The
changed Canary is validated like any other, so a setting that makes it invalid is an error naming
the setting and the field.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import PRESETS, Canary, Problem, SpecError, apply_preset, parse_canary, read_documents
from config.errors import short

#: Settings one sweep may hold: a grid beyond this is almost always a typo (a list where a value
#: was meant), and each setting costs a replay per recording.
MAX_SETTINGS = 10_000

_METRIC_KEY = re.compile(r"^metrics\[(?P<name>[^\]]+)\]\.(?P<path>.+)$")
_FILE_KEYS = frozenset(
    {"canary", "templates", "recordings", "labels", "falseRollbackLimit", "grid", "settings"}
)


@dataclass(frozen=True, slots=True)
class Setting:
    """One point of the grid: its changes to the Canary, in the order the file gives them."""

    id: str
    changes: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``threshold=2 preset=staging``: short enough for a table column."""
        return " ".join(f"{_short_key(k)}={_short_value(v)}" for k, v in self.changes.items())


@dataclass(slots=True)
class SweepFile:
    source: str
    canary: Path | None = None
    templates: list[Path] = field(default_factory=list)
    recordings: list[Path] = field(default_factory=list)
    labels: Path | None = None
    false_rollback_limit: float | None = None
    settings: list[Setting] = field(default_factory=list)


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read and check a sweep file; raise SpecError naming the key and the fix."""
    source = str(path)
    docs = read_documents(path)
    if len(docs) != 1:
        raise SpecError(Problem("", "expected one YAML mapping (the sweep)"), source=source)
    doc = docs[0]
    unknown = sorted(set(doc) - _FILE_KEYS, key=str)  # (keys may be numbers or null too)
    if unknown:
        raise SpecError(
            Problem(
                str(unknown[0]),
                f"unknown key; a sweep file has {', '.join(sorted(_FILE_KEYS))}",
            ),
            source=source,
        )
    base = Path(path).parent
    out = SweepFile(source=source)
    if doc.get("canary") is not None:
        out.canary = base / _string(doc, "canary", source)
    out.templates = [base / p for p in _strings(doc, "templates", source)]
    out.recordings = [base / p for p in _strings(doc, "recordings", source)]
    if doc.get("labels") is not None:
        out.labels = base / _string(doc, "labels", source)
    limit = doc.get("falseRollbackLimit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
            raise SpecError(
                Problem(
                    "falseRollbackLimit",
                    f"must be a fraction 0..1 (0.02 is 2%), got {short(limit)}",
                ),
                source=source,
            )
        out.false_rollback_limit = float(limit)
    out.settings = expand_settings(doc.get("grid"), doc.get("settings"), source=source)
    return out


def expand_settings(grid: Any, extra: Any, *, source: str = "") -> list[Setting]:
    """The grid's combinations (its keys in file order, the last key varying fastest), then the
    explicit ``settings``; none at all is one setting that changes nothing."""
    changes: list[dict[str, Any]] = []
    if grid is not None:
        if not isinstance(grid, dict):
            raise SpecError(Problem("grid", "must map each key to a list of values"), source=source)
        keys = list(grid)
        values: list[list[Any]] = []
        for key in keys:
            _check_key(f"grid.{key}", key, source)
            options = grid[key]
            if not isinstance(options, list) or not options:
                raise SpecError(
                    Problem(
                        f"grid.{key}",
                        f"must be a non-empty list of values to try, got {options!r:.60}; "
                        "write one value as [value]",
                    ),
                    source=source,
                )
            values.append(options)
        count = 1
        for options in values:
            count *= len(options)
        if count > MAX_SETTINGS:
            raise SpecError(
                Problem(
                    "grid",
                    f"{count:,} combinations; at most {MAX_SETTINGS:,} per sweep: split it",
                ),
                source=source,
            )
        changes.extend(dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values))
    if extra is not None:
        if not isinstance(extra, list) or not all(isinstance(s, dict) for s in extra):
            raise SpecError(
                Problem("settings", "must be a list of mappings (key: value)"), source=source
            )
        for i, setting in enumerate(extra):
            for key in setting:
                _check_key(f"settings[{i}].{key}", key, source)
            changes.append(dict(setting))
    if len(changes) > MAX_SETTINGS:
        raise SpecError(
            Problem("settings", f"{len(changes):,} settings; at most {MAX_SETTINGS:,}"),
            source=source,
        )
    if not changes:
        changes.append({})
    return [Setting(id=f"s{i + 1}", changes=c) for i, c in enumerate(changes)]


def apply_setting(
    canary_body: Mapping[str, Any], setting: Setting, *, mesh_provider: str | None = None
) -> Canary:
    """The Canary with the setting's changes (preset first, then each key), validated (with the
    rules of the router ``mesh_provider`` names when the Canary has no ``spec.provider``)."""
    body = copy.deepcopy(dict(canary_body))
    preset = setting.changes.get("preset")
    if preset is not None:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise SpecError(
                Problem(
                    f"{setting.id}.preset",
                    f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}",
                )
            )
        body = apply_preset(body, PRESETS[preset])
    spec = body.setdefault("spec", {})
    key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec else "canaryAnalysis"
    analysis = spec.setdefault(key, {})
    for name, value in setting.changes.items():
        if name == "preset":
            continue
        found = _METRIC_KEY.match(name)
        if found is None:
            _set_path(analysis, name.removeprefix("analysis.").split("."), value)
            continue
        metric_name = found.group("name")
        listed = analysis.get("metrics")
        if listed is not None and not isinstance(listed, list):
            continue  # an earlier key of the setting made it no list: the parse below says so
        metrics = [m for m in listed or [] if isinstance(m, dict)]
        metric = next((m for m in metrics if m.get("name") == metric_name), None)
        if metric is None:
            names = ", ".join(str(m.get("name")) for m in metrics) or "none"
            raise SpecError(
                Problem(
                    f"{setting.id}.{name}",
                    f"the Canary has no analysis metric named {metric_name!r} (it has: {names})",
                )
            )
        _set_path(metric, found.group("path").split("."), value)
    try:
        return parse_canary(body, default_provider=mesh_provider)
    except SpecError as exc:
        raise SpecError(
            [Problem(f"{setting.id} ({setting.label})", str(p)) for p in exc.problems]
        ) from None


def _set_path(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for part in path[:-1]:
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = copy.deepcopy(value)


def _check_key(where: str, key: Any, source: str) -> None:
    if not isinstance(key, str):
        raise SpecError(Problem(where, "keys must be strings"), source=source)
    if key == "preset" or _METRIC_KEY.match(key):
        return
    if key.startswith("analysis.") and all(key.removeprefix("analysis.").split(".")):
        return
    raise SpecError(
        Problem(
            where,
            "a key is 'preset', 'analysis.<field>' (e.g. analysis.threshold) or "
            "'metrics[<name>].<field>' (e.g. metrics[request-success-rate].thresholdRange.min)",
        ),
        source=source,
    )


def _string(doc: Mapping[str, Any], key: str, source: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise SpecError(Problem(key, f"must be a file path, got {value!r:.60}"), source=source)
    return value


def _strings(doc: Mapping[str, Any], key: str, source: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(Problem(key, "must be a list of file paths"), source=source)
    return list(value)


def _short_key(key: str) -> str:
    found = _METRIC_KEY.match(key)
    if found is not None:
        return f"{found.group('name')}.{found.group('path')}"
    return key.removeprefix("analysis.")


def _short_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "null" if value is None else str(value)
