"""The comparative judge's arithmetic (analysis._judge): verdicts, explanations, validity."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import (
    CheckKind,
    CheckResult,
    FailureKind,
    JudgeInput,
    MetricQuery,
    QueryFailure,
    Verdict,
    judge_batch,
)
from analysis._judged import _merge, _samples_judged
from tests.analysis.conftest import CanaryFactory

STEP = 60.0


def judged(
    canary: list[float],
    primary_now: list[float] | None = None,
    *,
    history: list[float] | None = None,
    harmful: str = "increase",
    tolerance: float = 0.1,
    confidence: float = 0.99,
    window: float = 24 * 3600.0,
    min_history: int = 20,
    looks: int = 12,
) -> JudgeInput:
    """Canary samples at 60, 120, ... (the tick is at the last one); primary samples at the same
    times (``primary_now``) and ``history`` before time 0, one per minute."""
    history = [100.0] * 60 if history is None else history
    c_times = STEP * np.arange(1, len(canary) + 1)
    p_now = primary_now if primary_now is not None else []
    h_times = -STEP * np.arange(len(history), 0, -1) + STEP / 2
    return JudgeInput(
        canary_times=c_times,
        canary_values=np.array(canary, dtype=float),
        primary_times=np.concatenate([h_times, STEP * np.arange(1, len(p_now) + 1)]),
        primary_values=np.array([*history, *p_now], dtype=float),
        now=float(c_times[-1]) if len(canary) else STEP,
        start=0.0,
        step=STEP,
        window=window,
        harmful=harmful,
        confidence=confidence,
        tolerance=tolerance,
        min_history=min_history,
        looks=looks,
    )


def one(**kwargs: Any) -> Any:
    canary = kwargs.pop("canary")
    return judge_batch([judged(canary, **kwargs)])[0]


def noisy_history(n: int = 1440, seed: int = 1) -> list[float]:
    return list(np.random.default_rng(seed).normal(200.0, 10.0, n))


def test_a_canary_like_the_primary_passes_and_says_why() -> None:
    outcome = one(
        canary=[201.0, 199.0, 203.0], primary_now=[200.0, 201.0, 199.0], history=noisy_history()
    )
    assert outcome.verdict is Verdict.PASS
    assert outcome.explanation.startswith(
        "canary 203 within the primary's 24h before the analysis (median 2"
    )
    assert "primary now 199" in outcome.explanation
    assert outcome.explanation.endswith("→ pass")


def test_a_canary_far_above_everything_the_primary_did_fails_with_the_numbers() -> None:
    outcome = one(canary=[200.0, 410.0], primary_now=[201.0, 205.0], history=noisy_history())
    assert outcome.verdict is Verdict.FAIL
    assert outcome.value == 410.0
    assert outcome.baseline_level == pytest.approx(200.0, abs=1.0)
    assert outcome.upper > 200.0
    text = outcome.explanation
    assert text.startswith("canary 410 above the primary's 24h before the analysis (median 2")
    assert "primary now 205" in text and "vs the median → fail" in text
    change = (410.0 - outcome.baseline_level) / outcome.baseline_level
    assert f"{change:+.0%} vs the median" in text  # the change against the median, in percent


def test_the_decrease_direction_and_both() -> None:
    history = noisy_history()
    drop = one(canary=[90.0], primary_now=[200.0], history=history, harmful="decrease")
    assert drop.verdict is Verdict.FAIL
    assert "below the primary's 24h before the analysis" in drop.explanation
    rise_is_fine = one(canary=[400.0], primary_now=[200.0], history=history, harmful="decrease")
    assert rise_is_fine.verdict is Verdict.PASS
    assert one(canary=[90.0], primary_now=[200.0], history=history, harmful="both").verdict is (
        Verdict.FAIL
    )
    assert one(canary=[400.0], primary_now=[200.0], history=history, harmful="both").verdict is (
        Verdict.FAIL
    )
    assert one(canary=[205.0], primary_now=[200.0], history=history, harmful="both").verdict is (
        Verdict.PASS
    )


def test_an_incident_that_hits_the_primary_too_is_not_the_canarys_fault() -> None:
    # Both versions jump to 900 at the same step: outside the envelope, but no worse than the
    # primary right now, so no regression of the canary.
    outcome = one(canary=[900.0], primary_now=[950.0], history=noisy_history())
    assert outcome.verdict is Verdict.PASS
    # The tolerance applies to that comparison too: 900 is within 10 % of the primary's 850.
    assert one(canary=[900.0], primary_now=[850.0], history=noisy_history()).verdict is (
        Verdict.PASS
    )
    assert one(canary=[950.0], primary_now=[850.0], history=noisy_history()).verdict is (
        Verdict.FAIL
    )


def test_tolerance_spares_a_small_excess() -> None:
    history = [100.0] * 100
    assert one(canary=[105.0], history=history, tolerance=0.1).verdict is Verdict.PASS
    assert one(canary=[111.0], history=history, tolerance=0.1).verdict is Verdict.FAIL
    assert one(canary=[101.0], history=history, tolerance=0.0).verdict is Verdict.FAIL


def test_too_little_primary_history_is_inconclusive() -> None:
    outcome = one(canary=[500.0], history=[100.0] * 5, min_history=20)
    assert outcome.verdict is Verdict.INCONCLUSIVE
    assert outcome.explanation == (
        "only 5 primary samples in the 24h before the analysis to compare with, 20 needed "
        "(judge.minHistory; a longer judge.window reaches more where the primary's series goes "
        "back further) → inconclusive"
    )


def test_no_canary_sample_within_the_last_step_is_no_data() -> None:
    item = judged([100.0, 100.0, math.nan, math.nan], [100.0] * 4)
    outcome = judge_batch([item])[0]
    assert outcome.verdict is Verdict.NO_DATA
    assert outcome.explanation == "no canary sample in the last 1m to judge"
    assert judge_batch([judged([math.nan], [100.0])])[0].verdict is Verdict.NO_DATA


def test_no_sample_from_either_version_is_inconclusive_not_the_canarys_fault() -> None:
    # The primary stopped answering too (no traffic, an exporter down): the weight holds instead
    # of a failed check; inconclusiveLimit bounds how long, so this never promotes by itself.
    both_gone = judged([100.0, 100.0, math.nan], [100.0, 100.0, math.nan])
    outcome = judge_batch([both_gone])[0]
    assert outcome.verdict is Verdict.INCONCLUSIVE
    assert outcome.explanation == (
        "no sample from either the canary or the primary in the last 1m "
        "(no traffic, or the metric's source is down) → inconclusive"
    )
    late = JudgeInput(**{**_fields(judged([100.0], [100.0])), "now": 3 * STEP})
    assert judge_batch([late])[0].verdict is Verdict.INCONCLUSIVE
    # A primary sample from before the last step does not make the canary's gap its own fault.
    assert judge_batch([judged([100.0, math.nan], [100.0])])[0].verdict is Verdict.INCONCLUSIVE


def test_a_sparse_primary_still_answering_after_the_canary_stopped_is_a_canary_outage() -> None:
    # Primary samples every 5 minutes, judged every minute: the last step rarely holds one. The
    # canary stopped answering at minute 3 while the primary answered at minute 5: no data.
    item = judged([100.0, 100.0, 100.0, math.nan, math.nan, math.nan], [math.nan] * 6)
    primary_times = np.concatenate([item.primary_times[:-6], [5 * STEP - 30.0]])
    primary_values = np.concatenate([item.primary_values[:-6], [100.0]])
    sparse = JudgeInput(
        **{**_fields(item), "primary_times": primary_times, "primary_values": primary_values}
    )
    assert judge_batch([sparse])[0].verdict is Verdict.NO_DATA


def test_a_metric_that_sets_on_no_data_gets_no_data_when_nothing_answers() -> None:
    # onNoData in the manifest is the user's policy for missing data; the judge then reports
    # NO_DATA (the policy decides) rather than its own default, inconclusive.
    item = judged([100.0, math.nan], [100.0, math.nan])
    stated = JudgeInput(**{**_fields(item), "when_silent": Verdict.NO_DATA})
    outcome = judge_batch([stated])[0]
    assert outcome.verdict is Verdict.NO_DATA
    assert outcome.explanation == (
        "no sample from either the canary or the primary in the last 1m (no traffic, or the "
        "metric's source is down) → no data, counted as the metric's onNoData says"
    )


def test_evidence_of_a_regression_stays_for_the_rest_of_the_analysis() -> None:
    # A spike two ticks ago still fails this tick, and the explanation says when it was.
    outcome = one(canary=[100.0, 500.0, 100.0, 100.0], history=[100.0] * 100)
    assert outcome.verdict is Verdict.FAIL
    assert outcome.value == 500.0
    assert outcome.explanation.startswith(
        "canary 500 2m ago above the primary's 24h before the analysis"
    )
    # Samples before the analysis started are another run's.
    item = judged([500.0, 100.0, 100.0], history=[100.0] * 100)
    later = JudgeInput(**{**_fields(item), "start": 2 * STEP - 1})
    assert judge_batch([later])[0].verdict is Verdict.PASS


def test_a_later_spike_of_the_primary_does_not_excuse_an_earlier_breach() -> None:
    # The reference is the primary's window before the analysis: the same at every tick. A
    # primary spike to 1000 during the analysis (concurrent, after the canary's 400) once raised
    # the envelope at the next tick and turned the 400 into a pass, so the run promoted.
    history = [100.0] * 100
    at_breach = one(canary=[100.0, 400.0], primary_now=[100.0, 100.0], history=history)
    later = one(
        canary=[100.0, 400.0, 100.0, 100.0],
        primary_now=[100.0, 100.0, 1000.0, 100.0],
        history=history,
    )
    assert at_breach.verdict is Verdict.FAIL and later.verdict is Verdict.FAIL
    assert later.value == 400.0 and later.upper == at_breach.upper


def test_samples_closer_than_the_ticks_share_the_false_alarm_budget(
    make_canary: CanaryFactory,
) -> None:
    # Two canary samples a tick (judge.step: 30s, interval 1m) are twice the samples to judge:
    # the budget is split over 10, not 5 (stepWeight 10 to maxWeight 50: 5 ticks; JudgeInput.looks
    # counts samples).
    canary = make_canary([])
    assert _samples_judged(canary, 60.0) == 5
    assert _samples_judged(canary, 30.0) == 10
    assert _samples_judged(canary, 120.0) == 5  # fewer samples than ticks: still 5, to be safe


def test_the_window_limits_the_reference() -> None:
    # An old surge to 300 is outside a 1h window, so 250 is outside the envelope again.
    history = [300.0] * 30 + [100.0] * 120
    assert one(canary=[250.0], history=history).verdict is Verdict.PASS
    assert one(canary=[250.0], history=history, window=3600.0).verdict is Verdict.FAIL


def test_the_bound_is_the_conformal_order_statistic() -> None:
    # 1999 primary samples 1..1999; one look at confidence 0.99: the bound is the
    # ceil(2000 * 0.99) = 1980th smallest, i.e. 1980, then +10 % tolerance.
    history = [float(v) for v in range(1, 2000)]
    outcome = one(canary=[1.0], history=history, looks=1, tolerance=0.1, window=2000 * STEP)
    assert outcome.upper == pytest.approx(1980.0 * 1.1)
    assert outcome.false_alarm_bound == pytest.approx(0.01)
    # With only 60 samples the largest is the bound and the guarantee is 12/61.
    small = one(canary=[1000.0], history=[100.0] * 60, looks=12, tolerance=0.0)
    assert small.false_alarm_bound == pytest.approx(12 / 61)
    assert small.explanation.endswith(
        "with 60 primary samples the false-alarm bound is 20%, not 1% (a longer judge.window "
        "holds more)"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(0, 1000), min_size=0, max_size=4),
            st.lists(st.floats(0, 1000), min_size=0, max_size=80),
            st.sampled_from(["increase", "decrease", "both"]),
            st.floats(0, 0.5),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_judging_a_batch_is_judging_each_alone(cases: list[Any]) -> None:
    inputs = [
        judged(canary or [math.nan], history=history, harmful=harmful, tolerance=tol, min_history=5)
        for canary, history, harmful, tol in cases
    ]
    together = judge_batch(inputs)
    alone = [judge_batch([item])[0] for item in inputs]
    assert [o.verdict for o in together] == [o.verdict for o in alone]
    assert [o.explanation for o in together] == [o.explanation for o in alone]


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(200.0, 20.0, n),
        lambda rng, n: rng.lognormal(0.0, 1.0, n),
        lambda rng, n: rng.poisson(3.0, n).astype(float),
        lambda rng, n: rng.normal(0.0, 1.0, n),
    ],
    ids=["normal", "lognormal", "poisson-counts", "around-zero"],
)
def test_false_alarms_stay_at_the_nominal_level_under_a_look_every_interval(draw: Any) -> None:
    """A/A: canary and primary drawn from one distribution, 12 looks per run, a day of one-minute
    history, no tolerance. The share of runs that ever fail must stay at 1 - confidence (1 %)."""
    rng = np.random.default_rng(2026)
    runs, looks = 400, 12
    failed_runs = 0
    for _ in range(runs):
        history = draw(rng, 1440)
        canary = draw(rng, looks)
        primary = draw(rng, looks)
        inputs = [
            judged(
                list(canary[: j + 1]),
                list(primary[: j + 1]),
                history=list(history),
                tolerance=0.0,
                looks=looks,
                harmful="both",
            )
            for j in range(looks)
        ]
        failed_runs += any(o.verdict is Verdict.FAIL for o in judge_batch(inputs))
    # 1 % nominal; with 400 runs a correct judge stays under 3 % with probability > 0.999.
    assert failed_runs / runs <= 0.03


def test_a_regression_is_caught_in_the_look_it_appears() -> None:
    rng = np.random.default_rng(7)
    history = list(rng.normal(200.0, 10.0, 1440))
    canary = list(rng.normal(200.0, 10.0, 4)) + list(rng.normal(320.0, 10.0, 4))
    primary = list(rng.normal(200.0, 10.0, 8))
    verdicts = [
        judge_batch([judged(canary[: j + 1], primary[: j + 1], history=history)])[0].verdict
        for j in range(8)
    ]
    assert verdicts[:4] == [Verdict.PASS] * 4
    assert verdicts[4:] == [Verdict.FAIL] * 4


def _fields(item: JudgeInput) -> dict[str, Any]:
    return {name: getattr(item, name) for name in JudgeInput.__dataclass_fields__}


def test_a_canary_judges_the_same_alone_and_in_a_batch_when_primary_times_repeat() -> None:
    # The last primary instant holds two samples (100 and 600). Past the end of the last row of
    # the batch the nearest-sample search broke the tie differently, so the comparison guard
    # paired the canary with 100 alone and with 600 in a batch: fail alone, pass batched.
    times = np.r_[np.arange(-3600.0, 3600.0, 60.0), 3540.0]
    values = np.r_[np.full(120, 100.0), 600.0]
    item = JudgeInput(
        canary_times=np.array([3550.0]),
        canary_values=np.array([300.0]),
        primary_times=times,
        primary_values=values,
        now=3600.0,
        start=0.0,
        step=60.0,
        window=7200.0,
        harmful="increase",
        confidence=0.9,
        looks=1,
    )
    other = dataclasses.replace(
        item,
        canary_times=np.array([10.0]),
        canary_values=np.array([1.0]),
        primary_times=np.array([0.0]),
        primary_values=np.array([1.0]),
    )
    alone = judge_batch([item])[0]
    for batch in ([item, other], [other, item]):
        batched = judge_batch(batch)[batch.index(item)]
        assert (batched.verdict, batched.explanation) == (alone.verdict, alone.explanation)


def test_an_infinite_canary_sample_is_explained_as_prometheus_writes_it() -> None:
    # histogram_quantile answers +Inf when the quantile falls in the top bucket
    outcome = one(canary=[100.0, math.inf], primary_now=[100.0, 100.0])
    assert outcome.verdict is Verdict.FAIL
    assert "canary +Inf above" in outcome.explanation
    assert "inf%" not in outcome.explanation and "nan" not in outcome.explanation


def test_samples_near_the_largest_float_give_a_finite_median() -> None:
    history = [1e308] * 60
    outcome = one(canary=[1.7e308], history=history, primary_now=[1e308])
    assert "median 1.00e+308" in outcome.explanation and "nan" not in outcome.explanation


def _brute_nearest(
    canary_time: float, times: np.ndarray, values: np.ndarray, half_step: float
) -> float:
    """The primary sample nearest ``canary_time`` (the earlier one on a tie), NaN beyond half a
    step: what the judge's comparison guard compares a canary sample with."""
    best, value = math.inf, math.nan
    for t, v in zip(times, values, strict=True):
        if abs(t - canary_time) < best:
            best, value = abs(t - canary_time), v
    return value if best <= half_step else math.nan


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(-30, 5), max_size=25),
    st.lists(st.integers(-8, 5), min_size=1, max_size=10),
    st.sampled_from([0.5, 1.0, 2.0]),
)
def test_each_canary_sample_is_compared_with_the_primary_sample_of_its_step(
    primary_steps: list[int], canary_steps: list[int], reach: float
) -> None:
    """The concurrent primary sample (the one nearest in time within half a step, the earlier
    one on a tie) is what the guard and the explanation use; gaps and padding included."""
    from analysis._judge import _nearest

    p_times = np.array(sorted(set(primary_steps)), dtype=float) * STEP / 2
    p_values = np.arange(p_times.size, dtype=float) + 1.0
    c_times = np.array(sorted(canary_steps), dtype=float) * STEP / 2
    half_step = reach * STEP / 2
    width = max(1, p_times.size)
    padded_times = np.full((1, width), np.inf)
    padded_values = np.full((1, width), np.nan)
    padded_times[0, : p_times.size] = p_times
    padded_values[0, : p_times.size] = p_values

    got = _nearest(
        c_times[None, :],
        np.ones((1, c_times.size), dtype=bool),
        padded_times,
        padded_values,
        np.array([half_step]),
    )[0]

    want = [_brute_nearest(t, p_times, p_values, half_step) for t in c_times]
    assert np.array_equal(got, np.array(want), equal_nan=True)


def test_the_canary_level_is_the_median_of_its_samples_with_gaps_left_out() -> None:
    rng = np.random.default_rng(7)
    inputs = []
    for _ in range(40):
        canary = list(rng.lognormal(4.0, 1.0, int(rng.integers(1, 9))))
        for i in rng.choice(len(canary), size=len(canary) // 3, replace=False):
            canary[int(i)] = math.nan
        inputs.append(judged(canary, min_history=1))
    for item, outcome in zip(inputs, judge_batch(inputs), strict=True):
        finite = item.canary_values[np.isfinite(item.canary_values)]
        want = float(np.median(finite)) if finite.size else math.nan
        assert outcome.canary_level == want or (
            math.isnan(want) and math.isnan(outcome.canary_level)
        )


def test_numbers_in_the_thousands_are_written_whole_and_small_bounds_with_a_decimal() -> None:
    # .3g wrote "bound 1.1e+03" for 1100; a day of history under harmful: both guarantees
    # 24/1441 = 1.67 %, which the sentence rounded to 2 %.
    outcome = one(
        canary=[5000.0],
        primary_now=[1000.0],
        history=[1000.0] * 1440,
        harmful="both",
        tolerance=0.1,
    )
    assert outcome.verdict is Verdict.FAIL
    assert "canary 5000 above" in outcome.explanation
    assert "(median 1000, bound 1100, primary now 1000)" in outcome.explanation
    assert outcome.explanation.endswith(
        "the false-alarm bound is 1.67%, not 1% (a longer judge.window holds more)"
    )


# -- pinned by mutation testing -------------------------------------------------------------------


def test_the_conformal_rank_counts_the_canary_sample_itself() -> None:
    # 1000 samples 1..1000, α = 0.01: the ceil(1001 * 0.99) = 991st smallest, not the
    # ceil(1000 * 0.99) = 990th (that one breaks the "at most α" guarantee)
    history = [float(v) for v in range(1, 1001)]
    outcome = one(canary=[990.5], history=history, looks=1, tolerance=0.0, window=2000 * STEP)
    assert outcome.upper == 991.0
    assert outcome.verdict is Verdict.PASS


def test_harmful_both_gives_each_direction_half_the_false_alarm_budget() -> None:
    # α = 0.01 split in two: rank ceil(1001 * 0.995) = 996 from the top, 5 from the bottom
    history = [float(v) for v in range(1, 1001)]
    outcome = one(
        canary=[500.0], history=history, looks=1, tolerance=0.0, harmful="both", window=2000 * STEP
    )
    assert (outcome.lower, outcome.upper) == (5.0, 996.0)
    assert outcome.explanation.startswith("canary 500 within")
    assert "bounds 5..996" in outcome.explanation


def test_exactly_min_history_samples_are_enough_to_judge() -> None:
    outcome = one(canary=[100.0], history=[100.0] * 20, min_history=20)
    assert outcome.verdict is Verdict.PASS and not outcome.too_little_history


def test_a_sample_at_the_start_of_the_analysis_is_the_previous_revisions() -> None:
    # Prometheus' lookback: the point at the start reads what was scraped before it
    item = judged([5000.0, 100.0, 100.0], history=noisy_history())
    item = dataclasses.replace(item, canary_times=np.array([0.0, 60.0, 120.0]), now=120.0)
    [outcome] = judge_batch([item])
    assert outcome.verdict is Verdict.PASS
    assert outcome.value == 100.0


def test_tolerance_widens_a_negative_bound_too() -> None:
    # a metric below zero (a drift, a log-ratio): the tolerance is 10 % of |bound|, so the upper
    # bound of a primary at -100 is -90, and -95 is within it
    outcome = one(canary=[-95.0], history=[-100.0] * 60, tolerance=0.1)
    assert outcome.upper == pytest.approx(-90.0)
    assert outcome.verdict is Verdict.PASS


def _judge_passes() -> Any:
    return one(canary=[100.0], history=noisy_history())


@pytest.mark.parametrize(
    ("verdict", "failure", "said"),
    [
        # the thresholdRange's query failed: an error whatever the judge says (interfaces §2)
        (
            Verdict.ERROR,
            QueryFailure(FailureKind.TRANSPORT, "connection refused"),
            "its query failed → error",
        ),
        # no data for the thresholdRange: no data (onNoData decides), not the judge's pass
        (
            Verdict.NO_DATA,
            QueryFailure(FailureKind.NO_DATA, "no values found"),
            "no data for its thresholdRange → no data",
        ),
    ],
)
def test_a_threshold_range_that_could_not_be_checked_is_not_passed_by_the_judge(
    verdict: Verdict, failure: QueryFailure, said: str
) -> None:
    outcome = _judge_passes()
    assert outcome.verdict is Verdict.PASS
    query = MetricQuery(canary="test/podinfo", metric="latency", kind=CheckKind.QUERY)
    static = CheckResult(
        query=query, hi=500.0, value=None, verdict=verdict, message="static", failure=failure
    )
    merged = _merge(static, outcome, None)
    assert merged.verdict is verdict and merged.message == "static"
    assert merged.explanation.startswith(f"{said}; the judge alone: canary 100 within")
