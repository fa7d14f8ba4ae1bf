"""The vectorised evaluator agrees with the plain-Python reference, and bounds follow Flagger."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import config
from analysis import CheckKind, Verdict, bounds_for, evaluate, evaluate_reference
from analysis._evaluate import BLOCK

INF = math.inf
NAN = math.nan

_SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 99.5, 100.0, INF, -INF, NAN, 5e-324, 1e308])
_NUMBER = st.one_of(_SPECIAL, st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def _check(draw: st.DrawFn) -> tuple[float, float, float, bool]:
    value = draw(_NUMBER)
    # Bounds often equal the value, or are missing (±inf), so the inclusive edges get exercised.
    lo = draw(st.one_of(st.just(value), st.just(-INF), _NUMBER))
    hi = draw(st.one_of(st.just(value), st.just(INF), _NUMBER))
    return value, lo, hi, draw(st.booleans())


def _arrays(
    rows: list[tuple[float, float, float, bool]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    values, lo, hi, failed = zip(*rows, strict=True) if rows else ((), (), (), ())
    return (
        np.array(values, dtype=np.float64),
        np.array(lo, dtype=np.float64),
        np.array(hi, dtype=np.float64),
        np.array(failed, dtype=np.bool_),
    )


@given(st.lists(_check(), max_size=300))
def test_vectorised_evaluator_matches_the_plain_python_reference(
    rows: list[tuple[float, float, float, bool]],
) -> None:
    values, lo, hi, failed = _arrays(rows)
    codes = evaluate(values, lo, hi, failed)
    assert codes.dtype == np.int8
    assert codes.tolist() == evaluate_reference(
        values.tolist(), lo.tolist(), hi.tolist(), failed.tolist()
    )


@pytest.mark.parametrize(
    ("value", "lo", "hi", "failed", "expected"),
    [
        (99.5, 99.5, INF, False, Verdict.PASS),  # equal to the lower bound passes
        (500.0, -INF, 500.0, False, Verdict.PASS),  # equal to the upper bound passes
        (99.49, 99.5, INF, False, Verdict.FAIL),
        (500.1, -INF, 500.0, False, Verdict.FAIL),
        (NAN, -INF, INF, False, Verdict.NO_DATA),  # NaN is "no values found", never a pass
        (INF, 0.0, INF, False, Verdict.ERROR),  # a non-finite value is never a pass
        (INF, -INF, 5.0, False, Verdict.ERROR),
        (-INF, 0.0, INF, False, Verdict.ERROR),
        (-INF, -INF, INF, False, Verdict.ERROR),
        (1.0, -INF, INF, True, Verdict.ERROR),  # a failed query wins over its value
        (NAN, -INF, INF, True, Verdict.ERROR),  # ... and over no data
        (1.0, NAN, INF, False, Verdict.PASS),  # NaN bound: never fails, as in Flagger
    ],
)
def test_verdict_rules(value: float, lo: float, hi: float, failed: bool, expected: Verdict) -> None:
    codes = evaluate(np.array([value]), np.array([lo]), np.array([hi]), np.array([failed]))
    assert Verdict(int(codes[0])) is expected
    assert evaluate_reference([value], [lo], [hi], [failed]) == [expected]


def test_bounds_broadcast_and_inputs_are_not_modified() -> None:
    values = np.array([[1.0, NAN], [7.0, 3.0]])
    failed = np.array([[False, False], [False, True]])
    before = values.copy()
    codes = evaluate(values, np.array([0.0, 0.0]), np.array(5.0), failed)
    assert codes.tolist() == [
        [Verdict.PASS, Verdict.NO_DATA],
        [Verdict.FAIL, Verdict.ERROR],
    ]
    np.testing.assert_array_equal(values, before)


def test_many_blocks_and_scalar_arguments_match_the_reference() -> None:
    rng = np.random.default_rng(7)
    n = 2 * BLOCK + 123  # several blocks and a short last one
    values = rng.uniform(0.0, 10.0, n)
    values[rng.random(n) < 0.1] = NAN
    lo = rng.uniform(0.0, 5.0, n)
    failed = rng.random(n) < 0.05
    codes = evaluate(values, lo, np.array(8.0), np.array(False))
    expected = evaluate_reference(values.tolist(), lo.tolist(), [8.0] * n, [False] * n)
    assert codes.shape == (n,) and codes.tolist() == expected
    codes = evaluate(values, lo, np.full(n, INF), failed)
    assert codes.tolist() == evaluate_reference(
        values.tolist(), lo.tolist(), [INF] * n, failed.tolist()
    )
    assert evaluate(np.array([]), np.array([]), np.array([]), np.array([], dtype=bool)).size == 0


def test_reference_rejects_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError):
        evaluate_reference([1.0, 2.0], [0.0], [INF, INF], [False, False])


_JUDGE = {"baseline": "primary", "harmful": "increase"}


def _metric(**fields: object) -> config.Metric:
    return config.Metric.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "kind", "expected"),
    [
        ({"thresholdRange": {"min": 99}}, CheckKind.SUCCESS_RATE, (99.0, None)),
        ({"thresholdRange": {"min": 90, "max": 99.9}}, CheckKind.SUCCESS_RATE, (90.0, 99.9)),
        ({"threshold": 99}, CheckKind.SUCCESS_RATE, (99.0, None)),  # legacy: fail if v < T
        ({}, CheckKind.SUCCESS_RATE, (0.0, None)),  # Flagger: 0 > v fails only below zero
        ({"thresholdRange": {"max": 500}}, CheckKind.DURATION, (None, 500.0)),
        ({"thresholdRange": {"max": 500.9}}, CheckKind.DURATION, (None, 500.0)),  # whole ms
        ({"thresholdRange": {"min": 10.7}}, CheckKind.DURATION, (10.0, None)),
        ({"threshold": 500}, CheckKind.DURATION, (None, 500.0)),  # legacy: fail if d > T ms
        ({"threshold": 5}, CheckKind.QUERY, (None, 5.0)),  # legacy: fail if v > T
        ({}, CheckKind.QUERY, (None, 0.0)),
        ({}, CheckKind.TEMPLATE, (None, 0.0)),  # unset threshold is 0: any positive value fails
        ({"threshold": 2.5}, CheckKind.TEMPLATE, (None, 2.5)),
        ({"thresholdRange": {"min": 1, "max": 2}}, CheckKind.TEMPLATE, (1.0, 2.0)),
        ({"thresholdRange": {}}, CheckKind.TEMPLATE, (None, None)),  # a range wins, even empty
        ({"thresholdRange": {}, "threshold": 5}, CheckKind.QUERY, (None, None)),
        # a judged metric is held to no static bound of its own, unless it sets one: a legacy
        # threshold beside the judge keeps Flagger's meaning (the check fails when either fails)
        ({"judge": _JUDGE}, CheckKind.QUERY, (None, None)),
        ({"judge": _JUDGE, "threshold": 99}, CheckKind.SUCCESS_RATE, (99.0, None)),
        ({"judge": _JUDGE, "threshold": 500}, CheckKind.QUERY, (None, 500.0)),
    ],
)
def test_bounds_for_follows_flaggers_threshold_semantics(
    fields: dict[str, object], kind: CheckKind, expected: tuple[float | None, float | None]
) -> None:
    assert bounds_for(_metric(**fields), kind) == expected


def test_bounds_for_reads_non_finite_bounds_built_in_code_as_unbounded() -> None:
    # Validation rejects them in manifests (tests/analysis/test_non_finite.py); a Metric built
    # without validation still gets Flagger's reading: ±inf is no bound, NaN never fails.
    limits = config.ThresholdRange.model_construct(min=-INF, max=INF)
    metric = config.Metric.model_construct(name="m", threshold_range=limits)
    assert bounds_for(metric, CheckKind.QUERY) == (None, None)
    metric = config.Metric.model_construct(name="m", threshold=NAN)
    assert bounds_for(metric, CheckKind.QUERY) == (None, None)
