"""Detection-quality benchmark: labelled real series -> canary scenarios -> real engine -> scores.

    python3 benchmarks/detection.py --data DIR [--out DIR] [--seed N] [--quick] [--workers N]
        [--judge-key confidence=0.99,0.995,0.999 ...]

Scenarios come from ``_scenarios.build_scenarios`` (``shared/docs/detection-benchmark.md``
§3.1-3.3; every choice is in that module's docstring). Each scenario runs, in process, through
``engine.cli.simulate.simulate``: the same code as ``canary-engine simulate``. Nothing is written to
disk but the results: the Canary is a dict validated with ``config.parse_canary`` and the
recording is an ``analysis.Recording`` built from the scenario's arrays:

* a Canary ``bench/app`` (Deployment target, service port 80, ``interval: 1m``, ``stepWeight: 5``,
  ``maxWeight: 60``, so 12 metric-evaluating ticks, ``threshold: T``) with one metric ``m``
  (``query: m``), either a Flagger static ``thresholdRange`` or a ``judge`` block;
* the time ``t1`` of the first metric-evaluating tick is measured once at start-up (one probe
  simulation); canary row ``j`` and primary row ``j`` are samples at ``t1 + 60 j``, history row
  ``s - i`` is a primary sample at ``t1 - 60 i``. A missing value (NaN) is a sample with no value,
  which the engine sees as "no data" (a failed check). After the last row a query still sees the
  last row for the lookback (5 min), then the run ends (undecided) - only possible in a bad
  scenario whose file ends soon after the onset.

Settings (``SETTINGS``; add more with ``static_settings`` / ``judge_settings``):

* ``static``: Flagger-equivalent static thresholds derived from the history only (§3.4), for
  ``T`` in {1, 2, 3, 5} and margin ``m`` in {0.1, 0.25, 0.5}: harmful increase ->
  ``max = q99 + m |q99|``, decrease -> ``min = q01 - m |q01|``, both -> both bounds. (The doc's
  ``q99 (1 + m)`` is the same for positive values; the ``|.|`` form keeps the margin on the lax
  side for negative ones.)
* ``judge``: ``judge: {baseline: primary, harmful: <dir>, **grid}`` for ``T`` in {1, 2}; the grid
  comes from ``--judge-key key=v1,v2`` options (default ``DEFAULT_JUDGE_GRID``: window 24h or
  1h, tolerance 0.1 or 0.25, and the metric's ``onNoData`` unset (the default) or inconclusive;
  at threshold 2 only with it unset; plus ``STRICT_JUDGE_GRID``, tolerance 100 % at threshold 2,
  the strict end of the trade-off; a grid value ``unset`` leaves the key out of the manifest).
  When the first judge Canary does not validate, the judge settings are reported as not
  available and the benchmark carries on (as is a setting whose every simulation raised). Time
  is compressed to one row per minute, so the judge's default ``window: 24h`` covers the whole
  history of every scenario (1,440 rows at most), and ``window: 1h`` the last 60 rows.

A static check never reads the primary, so an A/A or common-mode scenario (its twin's canary and
history, primary := canary) decides exactly as its ``good`` / ``bad`` twin: static settings reuse
the twin's outcome instead of simulating it again (a test checks the identity by simulating both).
Judge settings simulate every scenario, but for one case: a setting that differs from another only
by the metric's ``onNoData`` (the policy maps only NO_DATA verdicts, and a silent primary's
INCONCLUSIVE) takes the other's outcome for every scenario whose run under the other had no
NO_DATA or INCONCLUSIVE check (``Outcome.policy_free``), and simulates the rest after it (about 20
of the development split's 1,065 scenarios; a test checks the identity by simulating both).

Results: ``detection.json`` (scenario counts, per-setting scores, trade-off, per-scenario
decisions) and ``detection.md`` (a headline table, also printed) in ``--out`` (default: the
current directory). Both score the bad scenarios twice from the same runs: the wider set, and
beside it the subset of §3.2 as written, whose history holds no other incident
(``_scenarios``: "Two sets of bad scenarios"; ``bad_as_written``, ``tradeoff_as_written``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scenarios import (
    HAMPEL_Z,
    N_ITERATIONS,
    Answer,
    Scenario,
    build_scenarios,
    counts,
)
from _scoring import FRR_TARGETS, Outcome, score_setting, tradeoff

from analysis import Recording
from config import Manifests, SpecError, parse_canary
from engine.cli.simulate import SimulationResult, simulate
from engine.shell import logs

INTERVAL_SECONDS = 60.0
STEP_WEIGHT = 5
MAX_WEIGHT = 60


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    family: str  # static | judge
    threshold: int
    margin: float | None = None  # static
    judge: tuple[tuple[str, Any], ...] = ()  # judge: extra keys

    def metric(self, scenario: Scenario) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "m", "interval": "1m", "query": "m"}
        if self.family == "static":
            body["thresholdRange"] = static_range(
                scenario.history, scenario.harmful, self.margin or 0.0
            )
        else:
            keys = {k: v for k, v in self.judge if v != UNSET}
            body.update({k: keys.pop(k) for k in METRIC_KEYS if k in keys})
            body["judge"] = {"baseline": "primary", "harmful": scenario.harmful, **keys}
        return body


def static_settings(
    thresholds: Iterable[int] = (1, 2, 3, 5), margins: Iterable[float] = (0.1, 0.25, 0.5)
) -> list[Setting]:
    return [
        Setting(f"static T={t} m={m:g}", "static", t, margin=m)
        for t, m in itertools.product(thresholds, margins)
    ]


#: A grid value that leaves the key out of the manifest (the engine's default applies).
UNSET = "unset"
#: The judge's two documented knobs, each at its default and one other value: the reference
#: window (the whole day of history, or the last hour) and the tolerance (10 % or 25 %); and the
#: metric's no-data policy: left unset (Flagger's failed check when only the canary's sample is
#: missing; the judge's inconclusive when neither version answered), or "inconclusive".
DEFAULT_JUDGE_GRID: dict[str, list[Any]] = {
    "window": ["24h", "1h"],
    "tolerance": [0.1, 0.25],
    "onNoData": [UNSET, "inconclusive"],
}
#: One stricter point, so the judge's trade-off reaches the strict end where static thresholds
#: have T=5 (no good release rolled back): a canary sample must be twice the envelope's bound
#: (tolerance 100 %), confirmed at a second interval (threshold 2, as the judge's default row).
STRICT_JUDGE_GRID: dict[str, list[Any]] = {
    "window": ["24h"],
    "tolerance": [1.0],
    "onNoData": [UNSET],
}
#: Grid keys that belong to the metric entry rather than to its ``judge`` block.
METRIC_KEYS = ("onNoData", "dryRun")


def judge_settings(
    thresholds: Iterable[int] = (1, 2), grid: dict[str, list[Any]] | None = None
) -> list[Setting]:
    keys = sorted(grid or {})
    combos = list(itertools.product(*((grid or {})[k] for k in keys))) if keys else [()]
    out = []
    for t in thresholds:
        for combo in combos:
            extra = tuple(zip(keys, combo, strict=True))
            label = " ".join(f"{k}={v}" for k, v in extra)
            out.append(
                Setting(f"judge T={t}{' ' + label if label else ''}", "judge", t, judge=extra)
            )
    return out


def static_range(history: np.ndarray, harmful: str, margin: float) -> dict[str, float]:
    """Flagger-style thresholdRange from the history only (§3.4)."""
    finite = history[np.isfinite(history)]
    if finite.size == 0:
        return {}
    out: dict[str, float] = {}
    if harmful in ("increase", "both"):
        q99 = float(np.quantile(finite, 0.99))
        out["max"] = q99 + margin * abs(q99)
    if harmful in ("decrease", "both"):
        q01 = float(np.quantile(finite, 0.01))
        out["min"] = q01 - margin * abs(q01)
    return out


def canary_body(setting: Setting, scenario: Scenario) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "app", "namespace": "bench"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": setting.threshold,
                "stepWeight": STEP_WEIGHT,
                "maxWeight": MAX_WEIGHT,
                "metrics": [setting.metric(scenario)],
            },
        },
    }


def _sample(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def recording_for(scenario: Scenario, t1: float) -> Recording:
    """The scenario's arrays as samples: canary/primary row j at t1 + 60 j, history before t1."""
    h = len(scenario.history)
    canary = [(t1 + INTERVAL_SECONDS * j, _sample(v)) for j, v in enumerate(scenario.canary)]
    primary = [
        (t1 - INTERVAL_SECONDS * (h - i), _sample(v)) for i, v in enumerate(scenario.history)
    ]
    primary += [(t1 + INTERVAL_SECONDS * j, _sample(v)) for j, v in enumerate(scenario.primary)]
    return Recording(series={("canary", "m"): canary, ("primary", "m"): primary})


def outcome_of(scenario_id: str, setting: str, result: SimulationResult) -> Outcome:
    """Decision, rollback iteration r and failed flags per metric-evaluating tick."""
    failed: list[bool] = []
    inconclusive: list[bool] = []
    r: int | None = None
    policy_free = True
    for tick in result.ticks:
        if result.result == "rolled_back" and tick.t == result.decided_at:
            r = len(failed)
        if tick.checks:
            names = [c.verdict.name for c in tick.checks]
            policy_free &= not any(n in ("NO_DATA", "INCONCLUSIVE") for n in names)
            # PASS passes; FAIL, NO_DATA and ERROR count as failed checks; INCONCLUSIVE (a
            # judge's "cannot tell yet") holds the weight without counting.
            failed.append(any(n not in ("PASS", "INCONCLUSIVE") for n in names))
            inconclusive.append(any(n == "INCONCLUSIVE" for n in names))
    if result.result == "rolled_back" and r is None:
        r = len(failed)
    return Outcome(
        scenario_id,
        setting,
        result.result,
        r,
        len(failed),
        failed,
        inconclusive,
        policy_free=policy_free,
    )


async def run_one(setting: Setting, scenario: Scenario, t1: float) -> Outcome:
    canary = parse_canary(canary_body(setting, scenario))
    manifests = Manifests(canaries=[canary])
    result = await simulate(manifests, canary, recording_for(scenario, t1))
    return outcome_of(scenario.id, setting.name, result)


async def _run_batch(setting: Setting, scenarios: Sequence[Scenario], t1: float) -> list[Outcome]:
    out = []
    for sc in scenarios:
        try:
            out.append(await run_one(setting, sc, t1))
        except Exception as exc:  # one broken scenario must not end the benchmark
            out.append(Outcome(sc.id, setting.name, "error", None, 0, error=f"{exc!r}"[:300]))
    return out


def first_analysis_time() -> float:
    """t of the first metric-evaluating tick, measured with a flat probe recording."""
    probe = Scenario("probe", np.ones(4), np.ones(40), np.ones(40), "increase", 60.0)
    setting = Setting("probe", "static", 1, margin=0.5)
    canary = parse_canary(canary_body(setting, probe))
    # samples from t=0 on: whichever tick first carries checks reads one
    rec = Recording(
        series={
            ("canary", "m"): [(60.0 * j, 1.0) for j in range(40)],
            ("primary", "m"): [(60.0 * j, 1.0) for j in range(40)],
        }
    )
    result = asyncio.run(simulate(Manifests(canaries=[canary]), canary, rec))
    for tick in result.ticks:
        if tick.checks:
            return float(tick.t)
    raise RuntimeError("the probe simulation ran no metric check")


# --- worker plumbing -------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(scenarios: list[Scenario], t1: float) -> None:
    logs.configure("console", "error")
    _WORKER["scenarios"] = scenarios
    _WORKER["t1"] = t1


def _task(setting: Setting, indices: list[int]) -> list[Outcome]:
    scenarios = _WORKER["scenarios"]
    return asyncio.run(_run_batch(setting, [scenarios[i] for i in indices], _WORKER["t1"]))


def run_all(
    settings: Sequence[Setting],
    scenarios: list[Scenario],
    t1: float,
    workers: int = 1,
    chunk: int = 64,
    *,
    skip: Mapping[str, set[int]] | None = None,
) -> list[Outcome]:
    """Every setting on every scenario (but the indices ``skip`` names for a setting)."""

    def chunks(setting: Setting) -> list[list[int]]:
        left = (skip or {}).get(setting.name, set())
        wanted = [i for i in range(len(scenarios)) if i not in left]
        return [wanted[i : i + chunk] for i in range(0, len(wanted), chunk)]

    tasks = [(s, c) for s in settings for c in chunks(s)]
    if workers <= 1:
        _init_worker(scenarios, t1)
        return [o for s, c in tasks for o in _task(s, c)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(scenarios, t1)) as pool:
        futures = [pool.submit(_task, s, c) for s, c in tasks]
        return [o for f in futures for o in f.result()]


def policy_bases(settings: Sequence[Setting]) -> dict[str, str]:
    """For each judge setting that sets the metric's onNoData, the setting (among ``settings``)
    that is the same but leaves it unset: variant name -> base name."""
    by_key = {(s.family, s.threshold, s.margin, s.judge): s.name for s in settings}
    out = {}
    for s in settings:
        if s.family != "judge" or all(k != "onNoData" or v == UNSET for k, v in s.judge):
            continue
        unset = tuple((k, UNSET if k == "onNoData" else v) for k, v in s.judge)
        base = by_key.get((s.family, s.threshold, s.margin, unset))
        if base is not None:
            out[s.name] = base
    return out


def run_policy_variants(
    variants: Sequence[Setting],
    bases: Mapping[str, str],
    outcomes: Sequence[Outcome],
    scenarios: list[Scenario],
    t1: float,
    workers: int,
) -> list[Outcome]:
    """Each variant's outcomes: its base's where the base's run was ``policy_free``, simulated
    for the other scenarios."""
    by_key = {(o.setting, o.id): o for o in outcomes}
    reused: list[Outcome] = []
    skip: dict[str, set[int]] = {}
    for variant in variants:
        rows = skip.setdefault(variant.name, set())
        for i, scenario in enumerate(scenarios):
            base = by_key.get((bases[variant.name], scenario.id))
            if base is not None and base.policy_free:
                reused.append(dataclasses.replace(base, setting=variant.name))
                rows.add(i)
    return reused + run_all(variants, scenarios, t1, workers=workers, skip=skip)


def reused_twin_outcomes(
    outcomes: Sequence[Outcome], twins: Mapping[str, str], *, skip_settings: set[str]
) -> list[Outcome]:
    """For every skipped (setting, scenario): the outcome of the scenario it twins."""
    by_key = {(o.setting, o.id): o for o in outcomes}
    out = []
    for setting in sorted(skip_settings):
        for sid, twin in twins.items():
            found = by_key.get((setting, twin))
            if found is not None:
                out.append(dataclasses.replace(found, id=sid))
    return out


def check_judge(settings: Sequence[Setting], scenarios: Sequence[Scenario]) -> str | None:
    """Why judge settings cannot run (None: they can)."""
    if not settings or not scenarios:
        return None
    try:
        parse_canary(canary_body(settings[0], scenarios[0]))
    except SpecError as exc:
        return f"the judge Canary does not validate: {exc}"
    return None


# --- report ----------------------------------------------------------------------------------


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def _with_ci(proportion: dict[str, Any]) -> str:
    """A proportion's rate and its 95 % interval, in percent: ``12.5 [4.1, 29.0]``."""
    lo, hi = proportion["ci95"] or (None, None)
    return f"{_pct(proportion['rate'])} [{_pct(lo)}, {_pct(hi)}]"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def markdown(report: dict[str, Any]) -> str:
    c = report["counts"]
    lines = [
        "# Detection benchmark",
        "",
        f"data `{report['data']}`, seed {report['seed']}"
        f"{' (quick subset)' if report['quick'] else ''}"
        f", N = {N_ITERATIONS}; scenarios: bad {c.get('bad', 0)}, good {c.get('good', 0)}, "
        f"ambiguous {c.get('ambiguous', 0)}, common-mode {c.get('common_mode', 0)}, "
        f"A/A {c.get('aa', 0)}.",
        "",
        "| setting | bad detected (r > k) % [95% CI] (macro) | premature "
        "| good rolled back % [95% CI] (macro) | false-check % | median TTD | p90 TTD "
        "| A/A promoted % | common-mode promoted % | ambiguous rolled back % | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sc in report["settings"].items():
        if sc.get("unavailable"):
            lines.append(f"| {name} | not available: {sc['unavailable']} ||||||||||")
            continue
        det = sc["bad"]["detection"]
        frr = sc["good"]["false_rollback"]
        ttd = sc["bad"]["ttd_intervals"]
        lines.append(
            f"| {name} | {_with_ci(det)} ({_pct(det['macro'])}) "
            f"| {sc['bad']['premature']['n']} "
            f"| {_with_ci(frr)} ({_pct(frr['macro'])}) "
            f"| {_pct(sc['false_check_rate']['rate'], 2)} | {_num(ttd['median'])} "
            f"| {_num(ttd['p90'])} | {_pct(sc['aa']['rate'])} | {_pct(sc['common_mode']['rate'])} "
            f"| {_pct(sc['ambiguous']['rate'])} | {sc['errors']} |"
        )
    lines += [
        "",
        "Best detection at a false rollback rate <= X (per family; pooled point estimates):",
        "",
        *_best_lines(report["tradeoff"]),
        "",
        "TTD in analysis intervals (r - k); premature = bad scenarios rolled back before the "
        "onset was evaluated; A/A, common-mode and ambiguous are reported, not pooled.",
        "",
        "Second scoring, beside the first: good windows an outlier detector does not mark "
        f"({report['unmarked_good']} of {c.get('good', 0)}; Hampel identifier, "
        f"{HAMPEL_Z:g} scaled MADs, see `_scenarios.py`). Detection is unchanged.",
        "",
        "| setting | good rolled back % [95% CI], all | unmarked only |",
        "|---|---|---|",
    ]
    for name, sc in report["settings"].items():
        if sc.get("unavailable"):
            continue
        all_good, unmarked = (sc[key]["false_rollback"] for key in ("good", "good_unmarked"))
        lines.append(f"| {name} | {_with_ci(all_good)} | {_with_ci(unmarked)} |")
    lines += ["", "Best detection at a false rollback rate <= X over the unmarked good windows:"]
    lines += ["", *_best_lines(report["tradeoff_unmarked"]), ""]
    lines += _as_written_lines(report)
    return "\n".join(lines)


def _as_written_lines(report: dict[str, Any]) -> list[str]:
    """The bad scenarios of §3.2 as written (no other incident in the history), beside the
    wider set of the table above; the good windows are the same."""
    c = report["counts_as_written"]
    lines = [
        "The bad scenarios of §3.2 as written, beside the wider set above: those whose history "
        f"holds no other incident ({c.get('bad', 0)} of {report['counts'].get('bad', 0)} bad, "
        f"{c.get('common_mode', 0)} common-mode; see `_scenarios.py`). The good windows are the "
        "same.",
        "",
        "| setting | bad detected (r > k) % [95% CI] (macro) | premature "
        "| good rolled back % [95% CI] | median TTD | p90 TTD | common-mode promoted % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, sc in report["settings"].items():
        if sc.get("unavailable"):
            continue
        det = sc["bad_as_written"]["detection"]
        ttd = sc["bad_as_written"]["ttd_intervals"]
        lines.append(
            f"| {name} | {_with_ci(det)} ({_pct(det['macro'])}) "
            f"| {sc['bad_as_written']['premature']['n']} "
            f"| {_with_ci(sc['good']['false_rollback'])} "
            f"| {_num(ttd['median'])} | {_num(ttd['p90'])} "
            f"| {_pct(sc['common_mode_as_written']['rate'])} |"
        )
    lines += ["", "Best detection at a false rollback rate <= X, §3.2 as written:", ""]
    lines += [*_best_lines(report["tradeoff_as_written"]), ""]
    return lines


def _best_lines(tradeoff_report: dict[str, Any]) -> list[str]:
    lines = []
    for family, by_x in tradeoff_report["best_detection_at_false_rollback"].items():
        parts = []
        for x in FRR_TARGETS:
            p = by_x.get(f"{x:g}")
            parts.append(
                f"<= {100 * x:g}%: "
                + (
                    "none"
                    if p is None
                    else f"{_pct(p['detection'])}% ({p['setting']}, TTD {_num(p['median_ttd'])})"
                )
            )
        lines.append(f"- {family}: " + "; ".join(parts))
    return lines


def parse_grid(options: Sequence[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for opt in options:
        key, _, values = opt.partition("=")
        if not key or not values:
            raise SystemExit(f"--judge-key expects key=v1,v2,..., got {opt!r}")
        grid[key.strip()] = [_scalar(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def _scalar(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@dataclass(slots=True)
class Run:
    scenarios: list[Scenario]
    answers: dict[str, Answer]
    settings: list[Setting]
    outcomes: list[Outcome] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def run_benchmark(
    data_dir: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    workers: int = 1,
    settings: Sequence[Setting] | None = None,
) -> tuple[dict[str, Any], Run]:
    scenarios, answers = build_scenarios(data_dir, seed=seed)
    if quick:  # ids are hashes: this keeps an unbiased quarter of every kind
        scenarios = [sc for sc in scenarios if int(sc.id[3:], 16) % 4 == 0]
        answers = {sc.id: answers[sc.id] for sc in scenarios}
    settings = list(settings if settings is not None else [*static_settings(), *judge_settings()])
    run = Run(scenarios, answers, settings)
    judge = [s for s in settings if s.family == "judge"]
    reason = check_judge(judge, scenarios)
    runnable = [s for s in settings if not (s.family == "judge" and reason)]
    if reason:
        run.unavailable = {s.name: reason for s in judge}
    t1 = first_analysis_time()
    # A static check never reads the primary, and an A/A or common-mode scenario is its twin's
    # canary and history with primary := canary: it decides exactly as the twin does. Static
    # settings reuse the twin's outcome instead of simulating it again (half their runs);
    # tests/benchmarks/test_detection.py checks the identity by simulating both.
    index = {sc.id: i for i, sc in enumerate(scenarios)}
    twins = {
        sc.id: twin
        for sc in scenarios
        if (twin := answers[sc.id].twin) is not None and twin in index
    }
    twin_rows = {index[sid] for sid in twins}
    skip = {s.name: twin_rows for s in runnable if s.family == "static"}
    # A setting that differs from another only by the metric's onNoData decides every scenario
    # whose run under the other had no NO_DATA or INCONCLUSIVE check exactly as the other did
    # (the policy maps only those verdicts): it simulates only the rest, after the others.
    bases = policy_bases(runnable)
    first = [s for s in runnable if s.name not in bases]
    run.outcomes = run_all(first, scenarios, t1, workers=workers, skip=skip)
    run.outcomes += reused_twin_outcomes(run.outcomes, twins, skip_settings=set(skip))
    run.outcomes += run_policy_variants(
        [s for s in runnable if s.name in bases], bases, run.outcomes, scenarios, t1, workers
    )
    by_setting: dict[str, list[tuple[Answer, Outcome]]] = {s.name: [] for s in runnable}
    for o in run.outcomes:
        by_setting[o.setting].append((answers[o.id], o))
    for name, pairs in by_setting.items():
        errors = [o.error for _, o in pairs if o.result == "error"]
        if pairs and len(errors) == len(pairs):  # e.g. a judge the engine cannot run yet
            run.unavailable[name] = f"every simulation failed: {errors[0]}"
    scores: dict[str, dict[str, Any]] = {}
    for s in settings:
        if s.name in run.unavailable:
            scores[s.name] = {"unavailable": run.unavailable[s.name]}
        else:
            scores[s.name] = score_setting(by_setting[s.name])
    families = {s.name: s.family for s in settings}
    report = {
        "data": str(data_dir),
        "seed": seed,
        "quick": quick,
        "n_iterations": N_ITERATIONS,
        "first_analysis_tick_seconds": t1,
        "counts": counts(answers.values()),
        "settings": scores,
        "setting_definitions": {
            s.name: {
                "family": s.family,
                "threshold": s.threshold,
                "margin": s.margin,
                "judge": dict(s.judge) if s.family == "judge" else None,
            }
            for s in settings
        },
        "tradeoff": tradeoff(scores, families),
        "tradeoff_unmarked": tradeoff(scores, families, good="good_unmarked"),
        "counts_as_written": counts(a for a in answers.values() if not a.history_incident),
        "tradeoff_as_written": tradeoff(scores, families, bad="bad_as_written"),
        "unmarked_good": sum(
            1 for a in answers.values() if a.kind == "good" and not a.unlabelled_anomaly
        ),
    }
    return report, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="data directory laid out like shared/data")
    parser.add_argument("--out", default=".", help="directory for detection.json / detection.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="every 4th scenario only")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--judge-key",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="extra judge key swept over the values (repeat for a grid)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="REGEX",
        help="run only the settings whose name fully matches (repeatable), e.g. 'static T=1 .*'",
    )
    args = parser.parse_args(argv)
    logs.configure("console", "error")
    if args.judge_key:
        judges = judge_settings(grid=parse_grid(args.judge_key))
    else:
        # The full default grid at threshold 1; at threshold 2 Flagger's no-data policy only
        # (inconclusive barely matters there), and the strict point: the run stays under 5 minutes.
        judges = [
            s
            for s in judge_settings(grid=DEFAULT_JUDGE_GRID)
            if s.threshold == 1 or ("onNoData", UNSET) in s.judge
        ]
        judges += judge_settings(thresholds=(2,), grid=STRICT_JUDGE_GRID)
    settings = [*static_settings(), *judges]
    if args.only:
        settings = [s for s in settings if any(re.fullmatch(p, s.name) for p in args.only)]
        if not settings:
            parser.error("--only matches no setting")
    start = time.perf_counter()
    report, run = run_benchmark(
        args.data, seed=args.seed, quick=args.quick, workers=args.workers, settings=settings
    )
    report["wall_seconds"] = round(time.perf_counter() - start, 2)
    report["workers"] = args.workers
    report["answer_key"] = [a.to_json() for a in run.answers.values()]
    report["decisions"] = [o.to_json() for o in run.outcomes]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "detection.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    md = markdown(report)
    md += f"\nWall time {report['wall_seconds']} s with {args.workers} worker(s).\n"
    (out / "detection.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
