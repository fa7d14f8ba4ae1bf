"""A judged metric whose ``judge.step`` is left to its default, the analysis interval, is held to
the limits a written step is held to (the Judge model alone cannot see the interval): a window
of more than 100,000 intervals, or one shorter than an interval, is refused naming the fix."""

from __future__ import annotations

from typing import Any

import pytest

from config import SpecError, parse_canary


def canary(interval: str, judge: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "app", "namespace": "test"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
            "service": {"port": 80},
            "analysis": {
                "interval": interval,
                "stepWeight": 10,
                "metrics": [{"name": "request-duration", "judge": {"baseline": "primary"} | judge}],
            },
        },
    }


def problem(doc: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_canary(doc)
    return str(caught.value)


def test_a_window_of_too_many_default_steps_names_the_step_that_fits() -> None:
    text = problem(canary("10s", {"harmful": "increase", "window": "720h"}))
    assert "spec.analysis.metrics[0].judge.window" in text
    assert "259,200 samples per series" in text
    assert "set judge.step to at least 25.92s or judge.window to at most 277h46m40s" in text


def test_a_window_shorter_than_the_interval_is_refused() -> None:
    text = problem(canary("1m", {"harmful": "increase", "window": "30s"}))
    assert "spec.analysis.metrics[0].judge.window" in text
    assert "shorter than the analysis interval (1m0s)" in text


@pytest.mark.parametrize(
    ("interval", "judge"),
    [
        ("1m", {"harmful": "increase"}),  # the default day of minutes
        ("10s", {"harmful": "both", "window": "24h"}),  # 8,640 samples
        ("10s", {"harmful": "increase", "window": "720h", "step": "30s"}),  # a step written
    ],
)
def test_windows_that_fit_load(interval: str, judge: dict[str, Any]) -> None:
    parse_canary(canary(interval, judge))
