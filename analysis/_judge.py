"""The comparative judge: is the canary worse than anything the primary did? One numpy pass.

Pure and synchronous: arrays in, verdicts out; ``analysis._judged`` fetches the series and turns
outcomes into check results. ``docs/judge.md`` explains the design, the alternatives measured and
what the judge cannot see. In short, for every canary sample that arrived since the last tick:

1. **The primary's envelope.** The reference is every primary sample in the ``window`` before the
   canary sample: history from before the analysis and the concurrent samples. Its upper bound is
   the conformal order statistic at level ``α = (1 - confidence) / looks`` (``looks``: the ticks
   the analysis runs; each direction of ``harmful: both`` gets half): if canary and primary
   samples are exchangeable, a canary sample lands above it with probability at most ``α``, so a
   good canary fails *any* of the analysis' looks with probability at most ``1 - confidence``,
   whatever the metric's distribution. With fewer than ``1/α - 1`` primary samples the bound is
   the largest one, and the guarantee weakens to ``looks / (samples + 1)`` (explanations say so).
2. **Tolerance.** A sample must clear the bound by more than ``tolerance`` × |bound| (default
   10 %): metrics such as latency, error or crash rates and request rates are ratio-scaled, and a
   change smaller than that is not worth a rollback.
3. **The comparison guard.** A sample no worse than the primary's sample of the same step (by
   more than the same tolerance) does not count: an incident that hits both versions, or a busy
   hour, is not the canary's fault.

A tick's verdict is ``FAIL`` when a new canary sample falls outside the envelope in a harmful
direction, ``PASS`` when none does, ``INCONCLUSIVE`` when the window holds fewer than
``min_history`` primary samples (no baseline to compare with), ``NO_DATA`` when no canary sample
arrived within the last step. Each tick judges its own new samples, so ``analysis.threshold``
counts failing ticks exactly as it counts Flagger's failed checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis._types import Verdict

_DIRECTIONS = {"increase": (1,), "decrease": (-1,), "both": (1, -1)}


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeInput:
    """One judged check: the canary's and the primary's samples, and the judge's settings."""

    canary_times: NDArray[np.float64]
    canary_values: NDArray[np.float64]
    primary_times: NDArray[np.float64]
    primary_values: NDArray[np.float64]
    now: float  # the tick's time: canary samples in (now - step, now] are judged
    start: float  # when the analysis started (canary samples before it are not this run's)
    step: float  # sample spacing; also "concurrent" means within step/2
    window: float  # seconds of primary samples before each canary sample in its reference
    harmful: str  # "increase" | "decrease" | "both"
    confidence: float
    tolerance: float = 0.1
    min_history: int = 20
    looks: int = 1  # ticks the analysis runs (the false-alarm budget is split over them)


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeOutcome:
    verdict: Verdict
    explanation: str
    value: float  # the newest judged canary sample (NaN without one)
    lower: float  # the envelope the newest sample was held to (NaN when unbounded that way)
    upper: float
    reference_samples: int  # primary samples in the newest sample's window
    canary_level: float  # median canary sample since the analysis started
    baseline_level: float  # median primary sample in the newest sample's window
    false_alarm_bound: float  # what the window's size guarantees over all looks


@dataclass(frozen=True, slots=True)
class _Rows:
    """One row per judged canary sample (flattened over all inputs)."""

    owner: NDArray[np.intp]
    time: NDArray[np.float64]
    value: NDArray[np.float64]


def judge_batch(inputs: Sequence[JudgeInput]) -> list[JudgeOutcome]:
    """Judge every input in one vectorised pass (``score_rows``); outcomes in input order."""
    if not inputs:
        return []
    rows = _judged_rows(inputs)
    p_times, p_values = _padded_pairs(inputs)
    owner = rows.owner

    def column(values: list[float]) -> NDArray[np.float64]:
        return np.array(values, dtype=np.float64)[owner]

    directions = column([float(len(_DIRECTIONS[item.harmful])) for item in inputs])
    confidence = column([item.confidence for item in inputs])
    looks = column([float(max(1, item.looks)) for item in inputs])
    harmful = [_names(item.harmful) for item in inputs]
    scored = score_rows(
        value=rows.value,
        time=rows.time,
        primary_times=p_times[owner],
        primary_values=p_values[owner],
        window=column([item.window for item in inputs]),
        alpha=(1.0 - confidence) / looks / directions,
        tolerance=column([item.tolerance for item in inputs]),
        half_step=column([item.step / 2.0 for item in inputs]),
        increase=np.array(["increase" in h for h in harmful], dtype=np.bool_)[owner],
        decrease=np.array(["decrease" in h for h in harmful], dtype=np.bool_)[owner],
    )
    guaranteed = np.minimum(
        1.0, np.maximum(1.0 - confidence, looks * directions / (scored.samples + 1.0))
    )
    bounds = np.searchsorted(owner, np.arange(len(inputs) + 1))
    return [
        _outcome(item, np.arange(bounds[i], bounds[i + 1]), rows, scored, guaranteed)
        for i, item in enumerate(inputs)
    ]


@dataclass(frozen=True, slots=True)
class Scored:
    """``score_rows``' answer, one entry per judged canary sample."""

    above: NDArray[np.bool_]  # outside the envelope upwards (and above the concurrent primary)
    below: NDArray[np.bool_]
    upper: NDArray[np.float64]  # the envelope, tolerance included (NaN without reference)
    lower: NDArray[np.float64]
    samples: NDArray[np.intp]  # primary samples in the window
    median: NDArray[np.float64]  # their median
    concurrent: NDArray[np.float64]  # the primary sample of the same step (NaN: none)


def score_rows(
    *,
    value: NDArray[np.float64],
    time: NDArray[np.float64],
    primary_times: NDArray[np.float64],
    primary_values: NDArray[np.float64],
    window: NDArray[np.float64],
    alpha: NDArray[np.float64],
    tolerance: NDArray[np.float64],
    half_step: NDArray[np.float64],
    increase: NDArray[np.bool_],
    decrease: NDArray[np.bool_],
) -> Scored:
    """The judge's arithmetic for many canary samples at once (rows), all numpy.

    Row r is canary sample ``value[r]`` taken at ``time[r]``, with its check's primary samples
    in row r of the (rows × m) ``primary_*`` matrices (padding: NaN values). ``alpha`` is the
    per-look false-alarm level of one direction.
    """
    t = time[:, None]
    in_window = (primary_times <= t) & (primary_times > t - window[:, None])
    inside = np.isfinite(primary_values) & in_window
    reference = np.sort(np.where(inside, primary_values, np.nan), axis=1)  # NaN sorts last
    n = inside.sum(axis=1)
    # Conformal order statistic: the ceil((n+1)(1-α))-th smallest, capped at the largest.
    rank = np.minimum(np.ceil((n + 1) * (1.0 - alpha)).astype(np.intp), n)
    has = n > 0
    upper = np.take_along_axis(reference, np.clip(rank - 1, 0, None)[:, None], 1)[:, 0]
    lower = np.take_along_axis(reference, np.clip(n - rank, 0, None)[:, None], 1)[:, 0]
    upper = np.where(has, upper + tolerance * np.abs(upper), np.nan)
    lower = np.where(has, lower - tolerance * np.abs(lower), np.nan)
    middle = np.clip((n - 1) / 2.0, 0, None)
    below_mid = np.take_along_axis(reference, np.floor(middle).astype(np.intp)[:, None], 1)[:, 0]
    above_mid = np.take_along_axis(reference, np.ceil(middle).astype(np.intp)[:, None], 1)[:, 0]
    median = np.where(has, (below_mid + above_mid) / 2.0, np.nan)

    distance = np.where(np.isfinite(primary_values), np.abs(primary_times - t), np.inf)
    if distance.shape[1] == 0:  # no primary sample at all
        distance = np.full((time.shape[0], 1), np.inf)
        primary_values = np.full((time.shape[0], 1), np.nan)
    nearest = np.argmin(distance, axis=1)[:, None]
    found = np.take_along_axis(distance, nearest, 1)[:, 0]
    paired = np.take_along_axis(primary_values, nearest, 1)[:, 0]
    concurrent = np.where(found <= half_step, paired, np.nan)
    unpaired = np.isnan(concurrent)
    # The same tolerance applies to the comparison with the primary's sample of the step.
    margin = tolerance * np.abs(concurrent)
    with np.errstate(invalid="ignore"):
        above = increase & (value > upper) & (unpaired | (value > concurrent + margin))
        below = decrease & (value < lower) & (unpaired | (value < concurrent - margin))
    return Scored(above, below, upper, lower, n, median, concurrent)


def _names(harmful: str) -> tuple[str, ...]:
    return ("increase", "decrease") if harmful == "both" else (harmful,)


def _judged_rows(inputs: Sequence[JudgeInput]) -> _Rows:
    owners: list[NDArray[np.intp]] = []
    times: list[NDArray[np.float64]] = []
    values: list[NDArray[np.float64]] = []
    for i, item in enumerate(inputs):
        keep = (
            np.isfinite(item.canary_values)
            & (item.canary_times > item.now - item.step)
            & (item.canary_times <= item.now)
            & (item.canary_times >= item.start)
        )
        times.append(item.canary_times[keep].astype(np.float64))
        values.append(item.canary_values[keep].astype(np.float64))
        owners.append(np.full(int(keep.sum()), i, dtype=np.intp))
    return _Rows(np.concatenate(owners), np.concatenate(times), np.concatenate(values))


def _padded_pairs(
    inputs: Sequence[JudgeInput],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    width = max(1, max(item.primary_times.shape[0] for item in inputs))
    times = np.full((len(inputs), width), np.inf)
    values = np.full((len(inputs), width), np.nan)
    for i, item in enumerate(inputs):
        k = item.primary_times.shape[0]
        times[i, :k] = item.primary_times
        values[i, :k] = item.primary_values
    return times, values


def _outcome(
    item: JudgeInput,
    mine: NDArray[np.intp],
    rows: _Rows,
    scored: Scored,
    guaranteed: NDArray[np.float64],
) -> JudgeOutcome:
    since_start = item.canary_values[
        np.isfinite(item.canary_values) & (item.canary_times >= item.start)
    ]
    canary_level = float(np.median(since_start)) if since_start.size else math.nan
    if mine.size == 0:
        return JudgeOutcome(
            verdict=Verdict.NO_DATA,
            explanation=f"no canary sample in the last {_duration(item.step)} to judge",
            value=math.nan,
            lower=math.nan,
            upper=math.nan,
            reference_samples=0,
            canary_level=canary_level,
            baseline_level=math.nan,
            false_alarm_bound=math.nan,
        )
    above, below, upper, lower, n = (
        scored.above,
        scored.below,
        scored.upper,
        scored.lower,
        scored.samples,
    )
    failing = mine[above[mine] | below[mine]]
    row = int(failing[0]) if failing.size else int(mine[-1])
    baseline = float(scored.median[row])
    names = _names(item.harmful)
    fields = {
        "value": float(rows.value[row]),
        "lower": float(lower[row]) if "decrease" in names else math.nan,
        "upper": float(upper[row]) if "increase" in names else math.nan,
        "canary_level": canary_level,
        "baseline_level": baseline,
        "false_alarm_bound": float(guaranteed[row]),
    }

    def outcome(verdict: Verdict, explanation: str) -> JudgeOutcome:
        return JudgeOutcome(
            verdict=verdict,
            explanation=explanation,
            reference_samples=int(n[row]),
            **fields,
        )

    window = _duration(item.window)
    if int(n[mine].min()) < item.min_history:
        count = int(n[mine].min())
        return outcome(
            Verdict.INCONCLUSIVE,
            f"only {count} primary sample{'' if count == 1 else 's'} in the last {window} "
            f"to compare with, {item.min_history} needed → inconclusive",
        )
    value = float(rows.value[row])
    pair = float(scored.concurrent[row])
    now_text = "" if math.isnan(pair) else f", primary now {_num(pair)}"
    envelope = _envelope(item, float(lower[row]), float(upper[row]))
    if failing.size:
        is_above = bool(above[row])
        side = "above" if is_above else "below"
        bound = float(upper[row] if is_above else lower[row])
        weaker = ""
        if guaranteed[row] > (1.0 - item.confidence) * 1.0001:
            weaker = (
                f"; with {int(n[row])} primary samples the false-alarm bound is "
                f"{guaranteed[row]:.0%}, not {1.0 - item.confidence:.0%}"
            )
        explanation = (
            f"canary {_num(value)} {side} the primary's last {window} "
            f"(median {_num(baseline)}, bound {_num(bound)}{now_text})"
            f"{_change(value, baseline)} → fail{weaker}"
        )
        return outcome(Verdict.FAIL, explanation)
    explanation = (
        f"canary {_num(value)} within the primary's last {window} "
        f"(median {_num(baseline)}, {envelope}{now_text}) → pass"
    )
    return outcome(Verdict.PASS, explanation)


def _envelope(item: JudgeInput, lower: float, upper: float) -> str:
    names = _names(item.harmful)
    if names == ("increase",):
        return f"bound {_num(upper)}"
    if names == ("decrease",):
        return f"bound {_num(lower)}"
    return f"bounds {_num(lower)}..{_num(upper)}"


def _num(value: float) -> str:
    """A number for people: 3 significant digits, an exponent only for very large or small."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}"


def _change(value: float, baseline: float) -> str:
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return ""
    return f", {(value - baseline) / abs(baseline):+.0%} vs the median"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
