"""``canary-engine sweep``: a grid of settings x a folder of recordings -> what each one decides.

Every (setting, recording) pair is one replay of ``simulate``. Settings that only use Flagger's
static checks are replayed all at once by ``analysis._replay`` (array operations over settings x
recordings x ticks, tick for tick the decisions of the engine); the others (comparative judges,
gate webhooks, mirroring, routers other than ``kubernetes``) run through the engine itself, in this
process. ``--full-engine`` runs every pair through the engine.

Labels: a recording is ``good`` (the release was healthy: a rollback is a false rollback) or
``bad`` (a real regression: a rollback is a detection). They come from ``--labels FILE`` (CSV with
``recording,label``; ``recording`` is a path relative to the labels file, or a file name), else
from the recording's name: a file stem ending in ``-good`` / ``_good`` / ``-bad`` / ``_bad``, or a
parent folder named ``good`` or ``bad``. Unlabelled recordings count in the decision totals only.

Ranking: settings whose false-rollback rate is within the limit come first, by detection rate
(higher first), then false rollbacks (fewer first), then median time to detect (sooner first); the
others follow by false-rollback rate. Without labels the settings keep their file order.
"""

from __future__ import annotations

import asyncio
import csv
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from analysis import (
    Recording,
    ReplayLimits,
    batch_unsupported,
    compile_plan,
    load_recording,
    replay_batch,
)
from config import (
    DEFAULT_MESH_PROVIDER,
    Manifests,
    Problem,
    SpecError,
    load_manifests,
    printable,
    read_documents,
)
from engine.cli.grid import Setting, SweepFile, apply_setting
from engine.cli.simulate import MAX_TICKS, MAX_VIRTUAL_SECONDS, metric_templates, simulate

Label = Literal["good", "bad"]
Result = Literal["promoted", "rolled_back", "undecided"]
_RESULTS: tuple[Result, Result, Result] = ("promoted", "rolled_back", "undecided")
#: Default false-rollback limit for the ranking: 1 good release in 50.
DEFAULT_FALSE_ROLLBACK_LIMIT = 0.02
#: ``progress(done, total)`` after each replay (or block of batch replays).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LabelledRecording:
    path: Path
    name: str
    recording: Recording
    label: Label | None


@dataclass(slots=True)
class SettingOutcome:
    setting: Setting
    engine: Literal["batch", "full"]
    #: Why the batch could not replay it (None when it did).
    full_reason: str | None
    results: list[Result] = field(default_factory=list)
    decided_at: list[float | None] = field(default_factory=list)

    def count(self, result: Result) -> int:
        return sum(1 for r in self.results if r == result)


@dataclass(slots=True)
class SweepOutcome:
    recordings: list[LabelledRecording]
    settings: list[SettingOutcome]
    false_rollback_limit: float

    @property
    def labelled(self) -> bool:
        return any(r.label is not None for r in self.recordings)

    def summary(self, outcome: SettingOutcome) -> dict[str, Any]:
        labels = [r.label for r in self.recordings]
        decided = [t for t in outcome.decided_at if t is not None]
        bad = [i for i, label in enumerate(labels) if label == "bad"]
        good = [i for i, label in enumerate(labels) if label == "good"]
        detected = [i for i in bad if outcome.results[i] == "rolled_back"]
        false_rollbacks = [i for i in good if outcome.results[i] == "rolled_back"]
        detect_times = [outcome.decided_at[i] for i in detected]
        return {
            "id": outcome.setting.id,
            "setting": dict(outcome.setting.changes),
            "label": outcome.setting.label,
            "promoted": outcome.count("promoted"),
            "rolledBack": outcome.count("rolled_back"),
            "undecided": outcome.count("undecided"),
            "medianDecisionSeconds": _median(decided),
            "detectionRate": len(detected) / len(bad) if bad else None,
            "falseRollbackRate": len(false_rollbacks) / len(good) if good else None,
            "medianTimeToDetectSeconds": _median([t for t in detect_times if t is not None]),
            "engine": outcome.engine,
            **({"fullEngineReason": outcome.full_reason} if outcome.full_reason else {}),
            "results": list(outcome.results),
        }

    def ranked(self) -> list[dict[str, Any]]:
        rows = [self.summary(s) for s in self.settings]
        if not self.labelled:
            return rows
        limit = self.false_rollback_limit

        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            fr = row["falseRollbackRate"] or 0.0
            detection = row["detectionRate"] or 0.0
            ttd = row["medianTimeToDetectSeconds"]
            ttd = math.inf if ttd is None else ttd
            if fr <= limit:
                return (0, -detection, fr, ttd)
            return (1, fr, -detection, ttd)

        return sorted(rows, key=key)

    def to_json(self) -> dict[str, Any]:
        return {
            "recordings": len(self.recordings),
            "labelled": self.labelled,
            "falseRollbackLimit": self.false_rollback_limit,
            "recordingNames": [r.name for r in self.recordings],
            "recordingLabels": [r.label for r in self.recordings],
            "settings": self.ranked(),
        }


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SweepInputs:
    canary_body: dict[str, Any]
    manifests: Manifests
    recordings: list[LabelledRecording]
    settings: list[Setting]
    false_rollback_limit: float
    mesh_provider: str = DEFAULT_MESH_PROVIDER


def load_sweep_inputs(
    sweep: SweepFile,
    *,
    canary: str | Path | None = None,
    templates: Sequence[str | Path] = (),
    recordings: Sequence[str | Path] = (),
    labels: str | Path | None = None,
    false_rollback_limit: float | None = None,
    mesh_provider: str = DEFAULT_MESH_PROVIDER,
) -> SweepInputs:
    """Everything a sweep needs, read and checked; command-line values win over the file's."""
    canary_path = Path(canary) if canary is not None else sweep.canary
    if canary_path is None:
        raise SpecError(
            Problem("--canary", "no Canary: give --canary FILE or 'canary:' in the sweep file")
        )
    template_paths = [Path(t) for t in templates] or sweep.templates
    manifests = load_manifests([canary_path, *template_paths], default_provider=mesh_provider)
    bodies = [d for d in read_documents(canary_path) if d.get("kind") == "Canary"]
    if len(bodies) != 1:
        raise SpecError(
            Problem(
                "--canary",
                f"expected exactly one Canary in {canary_path}, found {len(bodies)}",
            )
        )
    if len(manifests.canaries) != 1:
        raise SpecError(
            Problem(
                "--template",
                "a template file holds a Canary too: give the Canary only with --canary "
                "(or 'canary:' in the sweep file)",
            )
        )
    paths = _recording_files([Path(r) for r in recordings] or sweep.recordings)
    label_path = Path(labels) if labels is not None else sweep.labels
    named = _read_labels(label_path) if label_path is not None else None
    loaded = [
        LabelledRecording(
            path=p, name=_display_name(p), recording=load_recording(p), label=_label(p, named)
        )
        for p in paths
    ]
    if named is not None:
        unused = sorted(set(named) - {r.name for r in loaded} - {r.path.name for r in loaded})
        if unused:
            raise SpecError(
                Problem(
                    str(label_path),
                    f"labels name recordings that are not in the sweep: {', '.join(unused[:5])}",
                )
            )
    limit = false_rollback_limit
    if limit is None:
        limit = sweep.false_rollback_limit
    return SweepInputs(
        canary_body=bodies[0],
        manifests=manifests,
        recordings=loaded,
        settings=sweep.settings,
        false_rollback_limit=DEFAULT_FALSE_ROLLBACK_LIMIT if limit is None else limit,
        mesh_provider=mesh_provider,
    )


def _recording_files(paths: Sequence[Path]) -> list[Path]:
    if not paths:
        raise SpecError(
            Problem(
                "--recordings",
                "no recordings: give --recordings PATH (files or folders) or 'recordings:' in "
                "the sweep file",
            )
        )
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".json") and p.is_file()
            )
            if not found:
                raise SpecError(Problem(str(path), "folder holds no .csv or .json recordings"))
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise SpecError(Problem(str(path), "recording not found"))
    return out


def _display_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_labels(path: Path) -> dict[str, Label]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(Problem(str(path), f"cannot read labels: {exc.strerror or exc}")) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            Problem(str(path), f"labels must be UTF-8 text: byte {exc.start} is not")
        ) from None
    try:
        return _labels_from(path, text)
    except csv.Error as exc:
        raise SpecError(Problem(str(path), f"labels are not valid CSV: {exc}")) from None


def _labels_from(path: Path, text: str) -> dict[str, Label]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"recording", "label"} <= set(reader.fieldnames):
        raise SpecError(
            Problem(str(path), "labels are CSV with a header 'recording,label' (label good or bad)")
        )
    out: dict[str, Label] = {}
    for line, row in enumerate(reader, start=2):
        label = (row.get("label") or "").strip().lower()
        name = (row.get("recording") or "").strip()
        if not name:
            raise SpecError(Problem(f"{path}:{line}", "column 'recording' is empty"))
        if label not in ("good", "bad"):
            raise SpecError(Problem(f"{path}:{line}", f"label must be good or bad, got {label!r}"))
        resolved = path.parent / name
        out[_display_name(resolved) if resolved.exists() else name] = (
            "good" if label == "good" else "bad"
        )
    return out


def _label(path: Path, named: dict[str, Label] | None) -> Label | None:
    if named is not None:
        return named.get(_display_name(path)) or named.get(path.name)
    stem = path.stem.lower()
    for label in ("good", "bad"):
        if stem.endswith((f"-{label}", f"_{label}")) or path.parent.name.lower() == label:
            return "good" if label == "good" else "bad"
    return None


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def run_sweep(
    inputs: SweepInputs, *, full_engine: bool = False, progress: Progress | None = None
) -> SweepOutcome:
    """Replay every setting against every recording (see the module docstring)."""
    canaries = [
        apply_setting(inputs.canary_body, s, mesh_provider=inputs.mesh_provider)
        for s in inputs.settings
    ]
    # A setting whose metric names a missing template stops the sweep before any replay.
    for setting, canary in zip(inputs.settings, canaries, strict=True):
        metric_templates(inputs.manifests, canary, where=f"{setting.id}: ")
    outcomes: list[SettingOutcome] = []
    batch: list[int] = []
    full: list[int] = []
    for index, (setting, canary) in enumerate(zip(inputs.settings, canaries, strict=True)):
        provider = canary.spec.provider or inputs.mesh_provider
        reason = "--full-engine" if full_engine else batch_unsupported(canary, provider)
        outcomes.append(
            SettingOutcome(
                setting=setting, engine="full" if reason else "batch", full_reason=reason
            )
        )
        (full if reason else batch).append(index)
    total = len(canaries) * len(inputs.recordings)
    done = 0
    recordings = [r.recording for r in inputs.recordings]
    if batch:
        templates = {(t.metadata.namespace, t.metadata.name): t for t in inputs.manifests.templates}
        plans = [
            compile_plan(canaries[i], templates, canaries[i].spec.provider or inputs.mesh_provider)
            for i in batch
        ]
        replayed = replay_batch(plans, recordings, ReplayLimits(MAX_TICKS, MAX_VIRTUAL_SECONDS))
        for row, index in enumerate(batch):
            out = outcomes[index]
            for col in range(len(recordings)):
                result, at = replayed.outcome(row, col)
                out.results.append(cast(Result, result))
                out.decided_at.append(at)
        done += len(batch) * len(recordings)
        if progress is not None:
            progress(done, total)
    if full:

        async def replay_all() -> None:
            nonlocal done
            for index in full:
                canary = canaries[index]
                for recording in recordings:
                    result = await simulate(
                        inputs.manifests, canary, recording, mesh_provider=inputs.mesh_provider
                    )
                    outcomes[index].results.append(result.result)
                    outcomes[index].decided_at.append(result.decided_at)
                    done += 1
                    if progress is not None:
                        progress(done, total)

        asyncio.run(replay_all())
    return SweepOutcome(
        recordings=inputs.recordings,
        settings=outcomes,
        false_rollback_limit=inputs.false_rollback_limit,
    )


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def render_table(outcome: SweepOutcome, *, colour: bool = False) -> str:
    """Best settings first; a line per setting."""
    rows = outcome.ranked()
    labelled = outcome.labelled
    limit = outcome.false_rollback_limit
    header = ["#", "id", "promoted", "rolled back", "undecided", "median decision"]
    if labelled:
        header += ["detected", "false rollbacks", "median detect"]
    header += ["engine", "setting"]
    lines = [header]
    for rank, row in enumerate(rows, start=1):
        line = [
            str(rank),
            row["id"],
            str(row["promoted"]),
            str(row["rolledBack"]),
            str(row["undecided"]),
            _seconds(row["medianDecisionSeconds"]),
        ]
        if labelled:
            line += [
                _rate(row["detectionRate"]),
                _rate(row["falseRollbackRate"]),
                _seconds(row["medianTimeToDetectSeconds"]),
            ]
        # a setting's label quotes the sweep file's values: printable on a terminal
        line += [row["engine"], printable(row["label"]) or "(the Canary as written)"]
        lines.append([printable(cell) for cell in line])
    widths = [max(len(r[i]) for r in lines) for i in range(len(header) - 1)]
    out = []
    for n, line in enumerate(lines):
        text = "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
        text = f"{text}  {line[-1]}"
        if colour and n == 0:
            text = f"\x1b[1m{text}\x1b[0m"
        elif colour and labelled and (rows[n - 1]["falseRollbackRate"] or 0.0) > limit:
            text = f"\x1b[2m{text}\x1b[0m"  # over the false-rollback limit: dimmed
        out.append(text.rstrip())
    counts = _label_counts(outcome.recordings)
    footer = f"{len(rows)} settings x {len(outcome.recordings)} recordings ({counts})"
    if labelled:
        footer += f"; ranked by detection within {limit:.1%} false rollbacks"
    out.append(footer)
    return "\n".join(out)


def _label_counts(recordings: Sequence[LabelledRecording]) -> str:
    good = sum(1 for r in recordings if r.label == "good")
    bad = sum(1 for r in recordings if r.label == "bad")
    other = len(recordings) - good - bad
    parts = [f"{good} good", f"{bad} bad"]
    if other:
        parts.append(f"{other} unlabelled")
    return ", ".join(parts)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"
