"""The comparative judge: is the canary worse than anything the primary did? One numpy pass.

Pure and synchronous: arrays in, verdicts out; ``analysis._judged`` fetches the series and turns
outcomes into check results. ``docs/judge.md`` explains the design, the alternatives measured and
what the judge cannot see. In short, every canary sample of the analysis so far is held to:

1. **The primary's envelope.** The reference is every primary sample in the ``window`` before the
   analysis started, while the primary took all the traffic: the same for every tick of the run,
   so each canary sample is judged once, and a verdict about it never changes (a later spike of
   the primary cannot excuse an earlier breach). Its upper bound is the conformal order statistic
   at level ``α = (1 - confidence) / looks`` (``looks``: the canary samples the analysis judges,
   one a tick unless ``step`` is shorter than the interval; each direction of ``harmful: both``
   gets half): if canary and primary samples are exchangeable, a canary sample lands above it
   with probability at most ``α``, so a good canary fails any tick of the analysis with
   probability at most ``1 - confidence``, whatever the metric's distribution. With fewer than
   ``1/α - 1`` primary samples the bound is the largest one, and the guarantee weakens to
   ``looks / (samples + 1)`` (explanations say so).
2. **Tolerance.** A sample must clear the bound by more than ``tolerance`` × |bound| (default
   10 %): metrics such as latency, error or crash rates and request rates are ratio-scaled, and a
   change smaller than that is not worth a rollback.
3. **The comparison guard.** A sample no worse than the primary's concurrent sample of the same
   step (by more than the same tolerance) does not count: an incident that hits both versions, or
   a busy hour, is not the canary's fault.

A tick's verdict is ``FAIL`` once any canary sample of this analysis is outside the envelope in a
harmful direction (evidence of a regression does not go away when later samples look fine, as in
any sequential test: ``threshold: 2`` then means one more interval of confirmation), ``PASS``
otherwise, ``INCONCLUSIVE`` when the reference holds fewer than ``min_history`` samples (no
baseline to compare with) or when neither the canary nor the primary answered within the last step
and the primary went quiet no later than the canary (nothing to blame the canary for; NO_DATA
instead when the metric sets ``onNoData``, whose policy then decides), ``NO_DATA`` when only the
canary's sample is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis._types import Verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeInput:
    """One judged check: the canary's and the primary's samples, and the judge's settings."""

    canary_times: NDArray[np.float64]
    canary_values: NDArray[np.float64]
    primary_times: NDArray[np.float64]
    primary_values: NDArray[np.float64]
    now: float  # the tick's time
    start: float  # when the analysis started (canary samples before it are not this run's)
    step: float  # sample spacing; "concurrent" means within step/2; "new" within the last step
    window: float  # seconds of primary samples before ``start`` that form the envelope
    harmful: str  # "increase" | "decrease" | "both"
    confidence: float
    tolerance: float = 0.1
    min_history: int = 20
    #: canary samples the analysis judges (the false-alarm budget is split over them): one a tick,
    #: more when the samples are closer together than the ticks
    looks: int = 1
    #: The verdict when neither version answered lately (see ``_silent``): INCONCLUSIVE, unless
    #: the metric sets ``onNoData`` itself (then NO_DATA, and its policy decides).
    when_silent: Verdict = Verdict.INCONCLUSIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeOutcome:
    verdict: Verdict
    explanation: str
    value: float  # the canary sample the verdict is about (NaN without one)
    lower: float  # the envelope (NaN when unbounded that way or without reference)
    upper: float
    reference_samples: int  # primary samples in the window before the analysis
    canary_level: float  # median canary sample since the analysis started
    baseline_level: float  # median primary sample in the window before the analysis
    false_alarm_bound: float  # what the window's size guarantees over all looks
    #: The window before the analysis held fewer than ``min_history`` primary samples: the
    #: judge had nothing to compare with (verdict INCONCLUSIVE).
    too_little_history: bool = False


@dataclass(frozen=True, slots=True)
class Scored:
    """``score_matrix``' answer: per check (K), and per canary sample (K × n)."""

    breach: NDArray[np.bool_]  # (K, n): outside the envelope, harmful, worse than the primary
    above: NDArray[np.bool_]  # (K, n): the breach is upwards
    concurrent: NDArray[np.float64]  # (K, n): the primary's sample of the same step (NaN: none)
    upper: NDArray[np.float64]  # (K,): the envelope, tolerance included (NaN: no reference)
    lower: NDArray[np.float64]
    samples: NDArray[np.intp]  # (K,): primary samples in the window
    median: NDArray[np.float64]  # (K,): their median


def judge_batch(inputs: Sequence[JudgeInput]) -> list[JudgeOutcome]:
    """Judge every input in one vectorised pass (``score_matrix``); outcomes in input order."""
    if not inputs:
        return []
    c_times, c_values = _padded([_since_start(item) for item in inputs], fill_time=np.inf)
    p_times, p_values = _padded(
        [(item.primary_times, item.primary_values) for item in inputs], fill_time=np.inf
    )

    def column(values: list[float]) -> NDArray[np.float64]:
        return np.array(values, dtype=np.float64)

    harmful = [_names(item.harmful) for item in inputs]
    directions = column([float(len(h)) for h in harmful])
    confidence = column([item.confidence for item in inputs])
    looks = column([float(max(1, item.looks)) for item in inputs])
    scored = score_matrix(
        canary_times=c_times,
        canary_values=c_values,
        primary_times=p_times,
        primary_values=p_values,
        reference_end=column([item.start for item in inputs]),
        window=column([item.window for item in inputs]),
        alpha=(1.0 - confidence) / looks / directions,
        tolerance=column([item.tolerance for item in inputs]),
        half_step=column([item.step / 2.0 for item in inputs]),
        increase=np.array(["increase" in h for h in harmful], dtype=np.bool_),
        decrease=np.array(["decrease" in h for h in harmful], dtype=np.bool_),
    )
    guaranteed = np.minimum(
        1.0, np.maximum(1.0 - confidence, looks * directions / (scored.samples + 1.0))
    )
    finite = np.isfinite(c_values)
    canary_level = _row_medians(c_values, finite)
    # The sample each verdict is about: the latest breach (the latest evidence), else the newest
    # sample of the last step, else none (-1).
    recent = finite & (c_times > (column([item.now - item.step for item in inputs]))[:, None])
    sample = np.where(
        scored.breach.any(axis=1),
        _last_true(scored.breach),
        np.where(recent.any(axis=1), _last_true(recent), -1),
    )
    return [
        _outcome(
            item,
            k,
            c_times[k],
            c_values[k],
            scored,
            guaranteed=float(guaranteed[k]),
            canary_level=float(canary_level[k]),
            index=int(sample[k]),
        )
        for k, item in enumerate(inputs)
    ]


def _last_true(matrix: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Per row, the index of the last True (a row without one answers its last index: mask it)."""
    last: NDArray[np.intp] = matrix.shape[1] - 1 - np.argmax(matrix[:, ::-1], axis=1)
    return last


def _row_medians(values: NDArray[np.float64], finite: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``np.median`` of each row's finite values (NaN for a row without any), all rows at once:
    the middle one, or the two middle ones' sum halved, as ``np.median`` computes it."""
    ordered = np.where(finite, values, np.nan)
    ordered.sort(axis=1)  # NaN sorts last
    count = finite.sum(axis=1)
    low = _column(ordered, np.clip((count - 1) // 2, 0, None))
    high = _column(ordered, count // 2)
    with np.errstate(over="ignore", invalid="ignore"):
        middle = np.where(count % 2 == 1, low, (low + high) / 2.0)
    return np.where(count > 0, middle, np.nan)


def score_matrix(
    *,
    canary_times: NDArray[np.float64],
    canary_values: NDArray[np.float64],
    primary_times: NDArray[np.float64],
    primary_values: NDArray[np.float64],
    reference_end: NDArray[np.float64],
    window: NDArray[np.float64],
    alpha: NDArray[np.float64],
    tolerance: NDArray[np.float64],
    half_step: NDArray[np.float64],
    increase: NDArray[np.bool_],
    decrease: NDArray[np.bool_],
) -> Scored:
    """The judge's arithmetic for K checks at once, all numpy.

    Row k holds check k's canary samples since the analysis started (K × n, padding NaN) and
    its primary samples (K × m, padding NaN), each row in time order. The envelope is made of the
    primary samples in the ``window`` up to ``reference_end`` (the analysis' start); the guard
    reads any of them. ``alpha`` is the false-alarm level of one canary sample in one direction.
    """
    in_window = (primary_times <= reference_end[:, None]) & (
        primary_times > (reference_end - window)[:, None]
    )
    inside = np.isfinite(primary_values) & in_window
    reference = np.where(inside, primary_values, np.nan)
    reference.sort(axis=1)  # in place (no second K × m copy); NaN sorts last
    n = inside.sum(axis=1)
    # Conformal order statistic: the ceil((n+1)(1-α))-th smallest, capped at the largest.
    rank = np.minimum(np.ceil((n + 1) * (1.0 - alpha)).astype(np.intp), n)
    has = n > 0
    upper = _column(reference, np.clip(rank - 1, 0, None))
    lower = _column(reference, np.clip(n - rank, 0, None))
    upper = np.where(has, upper + tolerance * np.abs(upper), np.nan)
    lower = np.where(has, lower - tolerance * np.abs(lower), np.nan)
    middle = np.clip((n - 1) / 2.0, 0, None)
    median = np.where(
        has,
        # halves first: (a + b) / 2 overflows for samples near the largest float
        _column(reference, np.floor(middle).astype(np.intp)) / 2.0
        + _column(reference, np.ceil(middle).astype(np.intp)) / 2.0,
        np.nan,
    )

    # Comparisons with NaN (padding, no reference) are false, so they never count as outside.
    with np.errstate(invalid="ignore"):
        outside_up = (canary_values > upper[:, None]) & increase[:, None]
        outside_down = (canary_values < lower[:, None]) & decrease[:, None]
    outside = outside_up | outside_down
    # The primary's sample of the same step is looked up only where it matters: samples outside
    # the envelope (rare) and each row's newest sample (for the explanation).
    finite = np.isfinite(canary_values)
    rows = np.arange(finite.shape[0])
    last = _last_true(finite)
    wanted = outside.copy()
    wanted[rows, last] |= finite[rows, last]
    concurrent = _nearest(canary_times, wanted, primary_times, primary_values, half_step)
    # The guard, only at the samples outside the envelope.
    row, column = np.nonzero(outside)
    value, pair = canary_values[row, column], concurrent[row, column]
    margin = tolerance[row] * np.abs(pair)
    unpaired = np.isnan(pair)
    breach = np.zeros_like(outside)
    above = np.zeros_like(outside)
    up = outside_up[row, column]
    worse = np.where(up, value > pair + margin, value < pair - margin) | unpaired
    breach[row, column] = worse
    above[row, column] = worse & up
    return Scored(breach, above, concurrent, upper, lower, n, median)


def _column(matrix: NDArray[np.float64], index: NDArray[np.intp]) -> NDArray[np.float64]:
    if matrix.shape[1] == 0:
        return np.full(matrix.shape[0], np.nan)
    return np.take_along_axis(matrix, index[:, None], 1)[:, 0]


def _nearest(
    times: NDArray[np.float64],
    wanted: NDArray[np.bool_],
    primary_times: NDArray[np.float64],
    primary_values: NDArray[np.float64],
    half_step: NDArray[np.float64],
) -> NDArray[np.float64]:
    """For the ``wanted`` (row, canary time) entries, the value of the same row's primary sample
    nearest in time, NaN if none lies within ``half_step`` (or it is a step without data); NaN
    elsewhere. A binary search per wanted entry, all entries at once: about log2(m) gathers of
    one value per entry, instead of a pass over the whole K × m matrix (rows are in time order,
    padded with +inf at the end)."""
    m = primary_times.shape[1]
    out = np.full(times.shape, np.nan)
    row, column = np.nonzero(wanted)
    if m == 0 or row.size == 0:
        return out
    query = times[row, column]
    # found: the first index whose time is >= the query (numpy's searchsorted, side "left"),
    # m when there is none; the entry's neighbours are found - 1 and found.
    low = np.zeros(row.size, dtype=np.intp)
    high = np.full(row.size, m, dtype=np.intp)
    while (searching := low < high).any():
        middle = (low + high) // 2
        before = primary_times[row, np.minimum(middle, m - 1)] < query
        low = np.where(searching & before, middle + 1, low)
        high = np.where(searching & ~before, middle, high)
    found = low
    left = np.maximum(found - 1, 0)
    right = np.minimum(found, m - 1)
    # +inf padding is never near: its distance is +inf.
    d_left = np.where(found > 0, np.abs(primary_times[row, left] - query), np.inf)
    d_right = np.where(found < m, np.abs(primary_times[row, right] - query), np.inf)
    pick = np.where(d_left <= d_right, left, right)
    close = np.minimum(d_left, d_right) <= half_step[row]
    out[row[close], column[close]] = primary_values[row[close], pick[close]]
    return out


def _names(harmful: str) -> tuple[str, ...]:
    return ("increase", "decrease") if harmful == "both" else (harmful,)


def _since_start(item: JudgeInput) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # A point at the start itself reads what was scraped before it (Prometheus' lookback): the
    # previous revision's, or nothing. Only points after it are this run's canary.
    keep = (item.canary_times > item.start) & (item.canary_times <= item.now)
    return item.canary_times[keep], item.canary_values[keep]


def _padded(
    rows: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]], *, fill_time: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    width = max(1, max(t.shape[0] for t, _ in rows))
    times = np.full((len(rows), width), fill_time)
    values = np.full((len(rows), width), np.nan)
    for i, (t, v) in enumerate(rows):
        order = np.argsort(t, kind="stable")
        times[i, : t.shape[0]] = t[order]
        values[i, : t.shape[0]] = v[order]
    return times, values


def _outcome(
    item: JudgeInput,
    k: int,
    times: NDArray[np.float64],
    values: NDArray[np.float64],
    scored: Scored,
    *,
    guaranteed: float,
    canary_level: float,
    index: int,
) -> JudgeOutcome:
    """Check ``k``'s verdict and explanation; ``index``: the canary sample it is about (-1:
    none in the last step, and no breach)."""
    names = _names(item.harmful)
    n = int(scored.samples[k])
    upper = float(scored.upper[k])
    lower = float(scored.lower[k])
    baseline = float(scored.median[k])
    breached = bool(scored.breach[k, index]) if index >= 0 else False
    value = float(values[index]) if index >= 0 else math.nan

    def outcome(verdict: Verdict, explanation: str, *, short: bool = False) -> JudgeOutcome:
        return JudgeOutcome(
            verdict=verdict,
            explanation=explanation,
            value=value,
            lower=lower if "decrease" in names else math.nan,
            upper=upper if "increase" in names else math.nan,
            reference_samples=n,
            canary_level=canary_level,
            baseline_level=baseline,
            false_alarm_bound=guaranteed,
            too_little_history=short,
        )

    window = _duration(item.window)
    if n < item.min_history:
        return outcome(
            Verdict.INCONCLUSIVE,
            f"only {n} primary sample{'' if n == 1 else 's'} in the {window} before the "
            f"analysis to compare with, {item.min_history} needed (judge.minHistory; a longer "
            "judge.window reaches more where the primary's series goes back further) "
            "→ inconclusive",
            short=True,
        )
    if index < 0:
        step = _duration(item.step)
        if _silent(item, times, np.isfinite(values)):
            # Neither version answered: the metric's source or the traffic, not the canary, is
            # missing. Unless the metric says otherwise (onNoData), the weight holds (and
            # inconclusiveLimit bounds how long) instead of a failed check that would blame the
            # canary for a quiet hour or a broken exporter.
            verdict = item.when_silent
            then = (
                "inconclusive"
                if verdict is Verdict.INCONCLUSIVE
                else "no data, counted as the metric's onNoData says"
            )
            return outcome(
                verdict,
                f"no sample from either the canary or the primary in the last {step} "
                f"(no traffic, or the metric's source is down) → {then}",
            )
        return outcome(Verdict.NO_DATA, f"no canary sample in the last {step} to judge")
    pair = float(scored.concurrent[k, index])
    when = float(times[index])
    ago = "" if when > item.now - item.step else f" {_duration(item.now - when)} ago"
    primary_text = (
        "" if math.isnan(pair) else f", primary {'then' if ago else 'now'} {number_text(pair)}"
    )
    if breached:
        is_above = bool(scored.above[k, index])
        side = "above" if is_above else "below"
        bound = upper if is_above else lower
        weaker = ""
        if guaranteed > (1.0 - item.confidence) * 1.0001:
            weaker = (
                f"; with {n} primary samples the false-alarm bound is "
                f"{_percent(guaranteed)}, not {_percent(1.0 - item.confidence)} (a longer "
                "judge.window holds more)"
            )
        explanation = (
            f"canary {number_text(value)}{ago} {side} the primary's {window} before the analysis "
            f"(median {number_text(baseline)}, bound {number_text(bound)}{primary_text})"
            f"{_change(value, baseline)} → fail{weaker}"
        )
        return outcome(Verdict.FAIL, explanation)
    explanation = (
        f"canary {number_text(value)} within the primary's {window} before the analysis "
        f"(median {number_text(baseline)}, {_envelope(item, lower, upper)}{primary_text}) → pass"
    )
    return outcome(Verdict.PASS, explanation)


def _silent(item: JudgeInput, times: NDArray[np.float64], answered: NDArray[np.bool_]) -> bool:
    """Neither version has a sample in the last step, and the primary went quiet no later than
    the canary did: a source whose primary samples are sparser than the step, still answering
    after the canary stopped, is a canary outage (no data), not a silent source."""
    last_canary = float(np.max(times, where=answered, initial=item.start))
    seen = np.isfinite(item.primary_values) & (item.primary_times <= item.now)
    last_primary = float(np.max(item.primary_times, where=seen, initial=-np.inf))
    return last_primary <= min(item.now - item.step, last_canary + item.step / 2.0)


def _envelope(item: JudgeInput, lower: float, upper: float) -> str:
    names = _names(item.harmful)
    if names == ("increase",):
        return f"bound {number_text(upper)}"
    if names == ("decrease",):
        return f"bound {number_text(lower)}"
    return f"bounds {number_text(lower)}..{number_text(upper)}"


def number_text(value: float) -> str:
    """A number for people: 3 significant digits, an exponent only for very large or small."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):  # as Prometheus writes it (histogram_quantile's top bucket)
        return "+Inf" if value > 0 else "-Inf"
    shown = f"{value:.3g}"
    magnitude = abs(float(shown))  # as rounded: 999.95 is shown as a thousand
    if value != 0 and (magnitude >= 1e6 or abs(value) < 1e-3):
        return f"{value:.2e}"
    if magnitude >= 1000:  # whole up to a million (.3g writes 1.1e+03)
        return f"{value:.0f}"
    return shown


def _percent(share: float) -> str:
    """A probability for people: whole percents from 10 %, three significant digits under it
    (1.67 %, not 2 %; 1.01 % beside 1 %; 0.04 %)."""
    if share >= 0.1:
        return f"{share:.0%}"
    return f"{share * 100:.3g}%"


def _change(value: float, baseline: float) -> str:
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return ""
    change = (value - baseline) / abs(baseline)
    if not math.isfinite(change):  # an infinite sample, or a ratio past any float
        return ""
    return f", {change:+.0%} vs the median"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
