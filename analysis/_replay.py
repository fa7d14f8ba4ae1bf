"""Batch replay: many settings x many recordings x every tick of a rollout, as array operations.

``canary-engine sweep`` tries a grid of settings over a folder of recordings. Running the engine
for each pair costs ~9 ms; this module replays all pairs that only use Flagger's static checks at
once, with numpy, and decides tick for tick exactly as ``engine.core.machine.decide`` does inside
``engine.cli.simulate`` (a hypothesis property test compares the two on random recordings and
settings, tick by tick). It is a restatement of the decision core for the subset of Canaries it
can model, so ``batch_unsupported`` names every feature it does not model; those settings run
through the full engine instead.

What is modelled, per tick (flagger-behaviour §2.4, as ``engine.core.machine`` implements it):

* Initialized -> Progressing on the tick at time 0 (the new revision was applied just before);
* Progressing: a rollback webhook answering 2xx rolls back; ``failedChecks >= threshold`` at the
  start of a tick rolls back; the first analysis tick (weight 0, no iterations) runs only the
  pre-rollout hooks (a failure is a failed check); later ticks run the rollout hooks, then every
  metric check (a failure, an error, or no data under ``onNoData: fail`` is a failed check;
  ``dryRun`` never counts; no data under ``onNoData: inconclusive`` holds the weight while the
  ``inconclusiveLimit`` lasts); a passing tick advances the canary weight (``stepWeight`` /
  ``stepWeights`` up to ``maxWeight``), or the blue/green iterations, then promotes;
* Promoting -> Finalising (``stepWeightPromotion`` steps the primary's weight back first) ->
  Succeeded.

Metric values come from the recording exactly as ``RecordedMetricSource`` answers them (the latest
sample at or before the tick within the lookback) and are judged by the same ``evaluate``.

Not modelled (``batch_unsupported`` says which, and the sweep replays such settings with the full
engine): comparative judges, gate webhooks (confirm-rollout, confirm-traffic-increase,
confirm-promotion), mirroring, ``skipAnalysis``, ``suspend``, and routers other than the
mesh-free ``kubernetes`` provider (so A/B testing, which needs a router that matches headers,
always runs through the engine).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from analysis._evaluate import evaluate
from analysis._plan import plan_checks
from analysis._recording import LOOKBACK_SECONDS, Recording
from analysis._types import Verdict
from config import TOTAL_WEIGHT, Canary, HookType, MetricTemplate, Phase, Strategy

#: Webhook types whose answers change a decision and that the batch does not model.
_GATES: Final = (
    HookType.CONFIRM_ROLLOUT,
    HookType.CONFIRM_TRAFFIC_INCREASE,
    HookType.CONFIRM_PROMOTION,
)

# Phase codes of the batch state (the tick trace maps them back to ``config.Phase``).
_INITIALIZED, _PROGRESSING, _PROMOTING, _FINALISING, _SUCCEEDED, _FAILED = range(6)
PHASES: Final = (
    Phase.INITIALIZED,
    Phase.PROGRESSING,
    Phase.PROMOTING,
    Phase.FINALISING,
    Phase.SUCCEEDED,
    Phase.FAILED,
)

#: Result codes of a replay, and their names in ``simulate``'s JSON.
PROMOTED, ROLLED_BACK, UNDECIDED = 0, 1, 2
RESULT_NAMES: Final = ("promoted", "rolled_back", "undecided")

_STRATEGY_CODE: Final = {Strategy.CANARY: 0, Strategy.BLUE_GREEN: 1}

Int = NDArray[np.int64]
Bool = NDArray[np.bool_]


def batch_unsupported(canary: Canary, provider: str) -> str | None:
    """Why the batch cannot replay this Canary (None when it can). ``provider`` is the resolved
    router (``spec.provider`` or simulate's default)."""
    spec = canary.spec
    analysis = spec.effective_analysis
    if provider != "kubernetes":
        return f"provider {provider!r} (the batch models the mesh-free kubernetes provider)"
    if spec.skip_analysis:
        return "skipAnalysis"
    if spec.suspend:
        return "suspend"
    if analysis.mirror:
        return "mirroring"
    if analysis.strategy not in _STRATEGY_CODE:
        return f"the {analysis.strategy.value} strategy"
    judged = [m.name for m in analysis.metrics if m.judge is not None]
    if judged:
        return f"a comparative judge on {', '.join(judged)}"
    gates = [w.name for w in analysis.webhooks if w.hook_type in _GATES]
    if gates:
        return f"gate webhooks ({', '.join(gates)})"
    return None


@dataclass(frozen=True, slots=True)
class _Check:
    metric: str
    lo: float
    hi: float
    truncate: bool
    broken: bool  # the query could not be rendered: an ERROR every time
    dry_run: bool
    on_no_data: str


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """One setting compiled for the batch: the numbers its decisions depend on."""

    interval: float
    threshold: int
    strategy: int
    max_weight: int
    #: ``next_step[w]``: how far an advance from canary weight ``w`` moves it (0..100).
    next_step: tuple[int, ...]
    iterations: int
    step_weight_promotion: int
    inconclusive_limit: int
    checks: tuple[_Check, ...]
    pre_rollout: tuple[str, ...]
    rollout: tuple[str, ...]
    rollback: tuple[str, ...]


def compile_plan(
    canary: Canary, templates: Mapping[tuple[str, str], MetricTemplate], provider: str
) -> BatchPlan:
    """The batch's view of ``canary``; call ``batch_unsupported`` first."""
    analysis = canary.spec.effective_analysis
    planned = plan_checks(canary, templates, provider=provider, default_server="http://unused")
    checks = []
    for check in planned:
        query = check.query
        checks.append(
            _Check(
                metric=query.metric,
                lo=-math.inf if check.lo is None else check.lo,
                hi=math.inf if check.hi is None else check.hi,
                truncate=check.truncate,
                broken=query.render_error is not None,
                dry_run=check.dry_run,
                on_no_data=check.on_no_data,
            )
        )
    return BatchPlan(
        interval=analysis.interval_seconds,
        threshold=analysis.failed_checks_threshold,
        strategy=_STRATEGY_CODE[analysis.strategy],
        max_weight=analysis.effective_max_weight,
        next_step=tuple(analysis.next_step_weight(w) for w in range(TOTAL_WEIGHT + 1)),
        iterations=analysis.effective_iterations,
        step_weight_promotion=analysis.step_weight_promotion or 0,
        inconclusive_limit=analysis.inconclusive_limit,
        checks=tuple(checks),
        pre_rollout=tuple(w.name for w in analysis.hooks(HookType.PRE_ROLLOUT)),
        rollout=tuple(w.name for w in analysis.hooks(HookType.ROLLOUT)),
        rollback=tuple(w.name for w in analysis.hooks(HookType.ROLLBACK)),
    )


@dataclass(frozen=True, slots=True)
class ReplayLimits:
    """Where a replay stops without a verdict (``engine.cli.simulate``'s bounds)."""

    max_ticks: int
    max_seconds: float
    lookback: float = LOOKBACK_SECONDS


@dataclass(slots=True)
class BatchResult:
    """Per (plan, recording) pair, indexed ``[plan, recording]``."""

    result: Int  # PROMOTED / ROLLED_BACK / UNDECIDED
    decided_at: NDArray[np.float64]  # virtual seconds, NaN when undecided
    ticks: Int  # ticks replayed
    #: With ``trace=True``: per tick (last axis) the status after the tick, as simulate's JSON
    #: reports it; ticks past a pair's end hold -1. ``phase`` holds indexes into ``PHASES``.
    times: list[NDArray[np.float64]] | None = None  # per plan: the tick times
    phase: list[Int] | None = None  # per plan: [recording, tick]
    weight: list[Int] | None = None
    failed: list[Int] | None = None
    iterations: list[Int] | None = None
    primary_weight: list[Int] | None = None

    def outcome(self, plan: int, recording: int) -> tuple[str, float | None]:
        """``simulate``'s result name and ``decidedAt`` (None when undecided) of one pair."""
        at = float(self.decided_at[plan, recording])
        return RESULT_NAMES[int(self.result[plan, recording])], None if math.isnan(at) else at


def replay_batch(
    plans: Sequence[BatchPlan],
    recordings: Sequence[Recording],
    limits: ReplayLimits,
    *,
    trace: bool = False,
) -> BatchResult:
    """Replay every plan against every recording; plans sharing an interval share one pass."""
    n_plans, n_recs = len(plans), len(recordings)
    out = BatchResult(
        result=np.full((n_plans, n_recs), UNDECIDED, dtype=np.int64),
        decided_at=np.full((n_plans, n_recs), math.nan),
        ticks=np.zeros((n_plans, n_recs), dtype=np.int64),
    )
    if trace:
        out.times, out.phase, out.weight, out.failed = [], [], [], []
        out.iterations, out.primary_weight = [], []
        empty = np.zeros((n_recs, 0), dtype=np.int64)
        for _ in plans:
            for name in ("phase", "weight", "failed", "iterations", "primary_weight"):
                getattr(out, name).append(empty)
            out.times.append(np.zeros(0))
    groups: dict[float, list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(plan.interval, []).append(index)
    for interval, members in groups.items():
        _replay_group(interval, [plans[i] for i in members], members, recordings, limits, out)
    return out


def tick_times(interval: float, end: float, limits: ReplayLimits) -> NDArray[np.float64]:
    """The virtual times of simulate's ticks: 0, then one interval after another (added up as
    the virtual clock adds them) until the next would pass ``end`` or a bound."""
    times = [0.0]
    t = 0.0
    while len(times) < limits.max_ticks:
        following = t + max(0.0, interval)
        if following > end or following > limits.max_seconds:
            break
        t = following
        times.append(t)
    return np.array(times, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """Per-tick inputs of every (plan, recording) pair of one interval group, ``[pair, tick]``."""

    verdict: NDArray[np.int8]  # 0 pass, 1 fail, 2 inconclusive
    pre_ok: Bool
    rollback: Bool
    n_ticks: Int  # [pair]


def _replay_group(
    interval: float,
    plans: list[BatchPlan],
    indexes: list[int],
    recordings: Sequence[Recording],
    limits: ReplayLimits,
    out: BatchResult,
) -> None:
    per_rec = [tick_times(interval, r.last_time + limits.lookback, limits) for r in recordings]
    n_recs = len(recordings)
    n_ticks = max(len(t) for t in per_rec)
    times = per_rec[int(np.argmax([len(t) for t in per_rec]))]
    inputs = _inputs(plans, recordings, per_rec, n_ticks, limits)
    n_pairs = len(plans) * n_recs

    # Per-pair settings (a plan's value repeated for each recording).
    def each(values: Sequence[int]) -> Int:
        return np.repeat(np.asarray(values, dtype=np.int64), n_recs)

    threshold = each([p.threshold for p in plans])
    strategy = each([p.strategy for p in plans])
    max_weight = each([p.max_weight for p in plans])
    goal = each([p.iterations for p in plans])
    swp = each([p.step_weight_promotion for p in plans])
    limit = each([p.inconclusive_limit for p in plans])
    plan_of = np.repeat(np.arange(len(plans)), n_recs)
    next_step = np.array([p.next_step for p in plans], dtype=np.int64)  # [plan, weight]

    phase = np.full(n_pairs, _INITIALIZED, dtype=np.int64)
    weight = np.zeros(n_pairs, dtype=np.int64)
    failed = np.zeros(n_pairs, dtype=np.int64)
    iters = np.zeros(n_pairs, dtype=np.int64)
    inconclusive = np.zeros(n_pairs, dtype=np.int64)
    routed = np.zeros(n_pairs, dtype=np.int64)  # the router's canary weight (primary: 100 - it)
    decided_tick = np.full(n_pairs, -1, dtype=np.int64)
    traces = [np.full((n_pairs, n_ticks), -1, dtype=np.int64) for _ in range(5)]

    for k in range(n_ticks):
        live = (k < inputs.n_ticks) & (decided_tick < 0)
        if not live.any():
            break
        start_phase = phase.copy()

        def reset(mask: Bool, to: int) -> None:
            """sync_status: a new phase with every counter at zero."""
            phase[mask] = to
            weight[mask] = 0
            failed[mask] = 0
            iters[mask] = 0
            inconclusive[mask] = 0

        # Initialized: the new revision starts a run.
        reset(live & (start_phase == _INITIALIZED), _PROGRESSING)

        # Progressing.
        progressing = live & (start_phase == _PROGRESSING)
        rollback = progressing & (inputs.rollback[:, k] | (failed >= threshold))
        reset(rollback, _FAILED)
        routed[rollback] = 0
        going = progressing & ~rollback
        first = going & (routed == 0) & (iters == 0)
        pre_failed = first & ~inputs.pre_ok[:, k]
        failed[pre_failed] += 1
        verdict = inputs.verdict[:, k]
        later = going & ~first
        counted_fail = later & ((verdict == 1) | ((verdict == 2) & (inconclusive >= limit)))
        failed[counted_fail] += 1
        held = later & (verdict == 2) & (inconclusive < limit)
        inconclusive[held] += 1
        advance = (first & ~pre_failed) | (later & (verdict == 0))
        _advance(
            advance, strategy, plan_of, next_step, max_weight, goal, phase, weight, iters, routed
        )

        # Promoting: the primary takes the traffic back, then Finalising.
        promoting = live & (start_phase == _PROMOTING)
        at_once = promoting & ((swp == 0) | (routed <= 0))
        routed[promoting & (swp == 0)] = 0
        stepped = promoting & ~at_once
        primary = np.minimum(TOTAL_WEIGHT, (TOTAL_WEIGHT - routed) + swp)
        routed[stepped] = TOTAL_WEIGHT - primary[stepped]
        done_shifting = at_once | (stepped & (primary == TOTAL_WEIGHT))
        phase[done_shifting] = _FINALISING
        weight[done_shifting] = 0
        iters[done_shifting] = 0
        still = stepped & (primary < TOTAL_WEIGHT)
        weight[still] = TOTAL_WEIGHT - primary[still]

        # Finalising -> Succeeded.
        finalising = live & (start_phase == _FINALISING)
        phase[finalising] = _SUCCEEDED
        weight[finalising] = 0
        iters[finalising] = 0

        decided_tick[live & ((phase == _SUCCEEDED) | (phase == _FAILED))] = k
        for trace, value in zip(
            traces, (phase, weight, failed, iters, TOTAL_WEIGHT - routed), strict=True
        ):
            trace[live, k] = value[live]

    ran = np.where(decided_tick >= 0, decided_tick + 1, inputs.n_ticks)
    result = np.full(n_pairs, UNDECIDED, dtype=np.int64)
    result[(decided_tick >= 0) & (phase == _SUCCEEDED)] = PROMOTED
    result[(decided_tick >= 0) & (phase == _FAILED)] = ROLLED_BACK
    decided_at = np.where(decided_tick >= 0, times[np.maximum(decided_tick, 0)], math.nan)
    for row, index in enumerate(indexes):
        pairs = slice(row * n_recs, (row + 1) * n_recs)
        out.result[index] = result[pairs]
        out.decided_at[index] = decided_at[pairs]
        out.ticks[index] = ran[pairs]
        if out.times is not None:
            out.times[index] = times
            for name, trace in zip(
                ("phase", "weight", "failed", "iterations", "primary_weight"), traces, strict=True
            ):
                getattr(out, name)[index] = trace[pairs]


def _advance(
    mask: Bool,
    strategy: Int,
    plan_of: Int,
    next_step: Int,
    max_weight: Int,
    goal: Int,
    phase: Int,
    weight: Int,
    iters: Int,
    routed: Int,
) -> None:
    """A passing tick: one weight step or iteration, or the promotion (``_run_canary`` /
    ``_run_blue_green``)."""
    canary = mask & (strategy == 0)
    step = next_step[plan_of, np.clip(routed, 0, TOTAL_WEIGHT)]
    moving = canary & (step > 0)
    below = moving & (routed < max_weight)
    new = np.minimum(TOTAL_WEIGHT, routed + step)
    routed[below] = new[below]
    weight[below] = new[below]
    phase[moving & ~below] = _PROMOTING

    blue_green = mask & (strategy == 1)
    more = blue_green & (goal > iters)
    switch = blue_green & (goal == iters)
    over = blue_green & (goal < iters)
    routed[switch] = TOTAL_WEIGHT
    iters[more | switch] += 1
    phase[over] = _PROMOTING


def _inputs(
    plans: list[BatchPlan],
    recordings: Sequence[Recording],
    per_rec: list[NDArray[np.float64]],
    n_ticks: int,
    limits: ReplayLimits,
) -> _Inputs:
    n_recs = len(recordings)
    grid = np.zeros((n_recs, n_ticks))
    for r, times in enumerate(per_rec):
        grid[r, : len(times)] = times
        grid[r, len(times) :] = times[-1] if len(times) else 0.0

    metrics = sorted({c.metric for p in plans for c in p.checks})
    column = {m: i for i, m in enumerate(metrics)}
    values = np.full((n_recs, max(1, len(metrics)), n_ticks), math.nan)
    for r, recording in enumerate(recordings):
        for metric, i in column.items():
            values[r, i] = _values_at(recording, metric, grid[r], limits.lookback)

    # Every check of every plan in one evaluate(): [recording, check, tick].
    checks = [c for p in plans for c in p.checks]
    bounds = [0, *np.cumsum([len(p.checks) for p in plans]).tolist()]
    if checks:
        picked = values[:, [column[c.metric] for c in checks], :]
        truncate = np.array([c.truncate for c in checks])
        picked[:, truncate, :] = np.trunc(picked[:, truncate, :])

        def column_of(values: list[float]) -> NDArray[np.float64]:
            return np.array(values, dtype=np.float64)[None, :, None]

        def flags_of(values: list[bool]) -> Bool:
            return np.array(values, dtype=np.bool_)[None, :, None]

        codes = evaluate(
            picked,
            column_of([c.lo for c in checks]),
            column_of([c.hi for c in checks]),
            flags_of([c.broken for c in checks]),
        )
        dry = flags_of([c.dry_run for c in checks])
        on_no_data = np.array([c.on_no_data for c in checks])[None, :, None]
        no_data = codes == int(Verdict.NO_DATA)
        fails = ~dry & (
            (codes == int(Verdict.FAIL))
            | (codes == int(Verdict.ERROR))
            | (no_data & (on_no_data == "fail"))
        )
        unsure = ~dry & no_data & (on_no_data == "inconclusive")
        fail_any = _any_per_plan(fails, bounds)  # [plan, recording, tick]
        unsure_any = _any_per_plan(unsure, bounds)
    else:
        fail_any = unsure_any = np.zeros((len(plans), n_recs, n_ticks), dtype=np.bool_)

    hook_ok: dict[tuple[str, HookType], NDArray[np.bool_]] = {}

    def ok(name: str, kind: HookType) -> NDArray[np.bool_]:
        key = (name, kind)
        if key not in hook_ok:
            hook_ok[key] = np.array(
                [_hook_ok_at(rec, name, kind, grid[r]) for r, rec in enumerate(recordings)]
            )
        return hook_ok[key]

    all_ok = np.ones((n_recs, n_ticks), dtype=np.bool_)
    pre_ok, rollback, rollout_failed = [], [], []
    for plan in plans:
        pre = [ok(h, HookType.PRE_ROLLOUT) for h in plan.pre_rollout]
        back = [ok(h, HookType.ROLLBACK) for h in plan.rollback]
        during = [ok(h, HookType.ROLLOUT) for h in plan.rollout]
        pre_ok.append(np.all(pre, axis=0) if pre else all_ok)
        rollback.append(np.any(back, axis=0) if back else ~all_ok)
        rollout_failed.append(~np.all(during, axis=0) if during else ~all_ok)
    fail_any = fail_any | np.array(rollout_failed)
    verdict = np.where(fail_any, 1, np.where(unsure_any, 2, 0)).astype(np.int8)
    n_each = np.array([len(t) for t in per_rec], dtype=np.int64)
    return _Inputs(
        verdict=verdict.reshape(-1, n_ticks),
        pre_ok=np.array(pre_ok).reshape(-1, n_ticks),
        rollback=np.array(rollback).reshape(-1, n_ticks),
        n_ticks=np.tile(n_each, len(plans)),
    )


def _any_per_plan(flags: Bool, bounds: list[int]) -> Bool:
    """``flags[recording, check, tick]`` -> ``[plan, recording, tick]``: any check of the plan."""
    counts = np.concatenate(
        [np.zeros_like(flags[:, :1, :], dtype=np.int64), np.cumsum(flags, axis=1)], axis=1
    )
    starts, ends = np.array(bounds[:-1]), np.array(bounds[1:])
    per_plan = counts[:, ends, :] - counts[:, starts, :]  # [recording, plan, tick]
    return np.moveaxis(per_plan > 0, 1, 0)


def _values_at(
    recording: Recording, metric: str, times: NDArray[np.float64], lookback: float
) -> NDArray[np.float64]:
    """``Recording.value_at`` for every time at once; NaN is no data."""
    sample_times, samples = recording.samples("canary", metric, -math.inf, math.inf)
    if not sample_times:
        return np.full(times.shape, math.nan)
    at = np.array(sample_times, dtype=np.float64)
    vals = np.array([math.nan if v is None else v for v in samples], dtype=np.float64)
    index = np.searchsorted(at, times, side="right") - 1
    found = vals[np.maximum(index, 0)]
    stale = (index < 0) | (times - at[np.maximum(index, 0)] > lookback)
    return np.where(stale, math.nan, found)


def _hook_ok_at(
    recording: Recording, name: str, kind: HookType, times: NDArray[np.float64]
) -> NDArray[np.bool_]:
    return np.array([recording.webhook_ok(name, float(t), kind) for t in times], dtype=np.bool_)
