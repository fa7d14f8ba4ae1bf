"""The seed setup's three rollout presets as named data, and how they merge into a Canary.

A preset fills analysis settings a Canary leaves out; every field written in the Canary wins.
"Success threshold" in the seed (80 %, 95 %, 99.5 %) is the request-success-rate floor, kept apart
from Flagger's ``analysis.threshold`` (failed checks before rollback).

Merge rules (documented in the README; interfaces.md §1: "fields written in the Canary win"):
* ``interval``, ``threshold`` come from the preset when the Canary has none.
* ``stepWeight`` comes from the preset only when the Canary chooses no strategy of its own (none
  of ``stepWeight``, ``stepWeights``, ``iterations``, and no ``match``), so a preset never turns a
  blue/green Canary into an invalid mix, nor an A/B test missing its ``iterations`` into weights
  on the matching requests; ``maxWeight`` whenever the Canary steps by ``stepWeight`` without one
  (the preset's cap on the canary's share of traffic).
* ``metrics``: a Canary that writes its list keeps it (the preset adds no metric to it, so a check
  the user did not ask for cannot roll a release back); within it, a metric named like one of the
  preset's (``request-success-rate``, ``request-duration``) takes the preset's fields it leaves out
  (so it may set only ``max``). A Canary without ``metrics`` gets the preset's two.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Preset:
    name: str
    purpose: str
    interval: str
    max_weight: int
    step_weight: int
    threshold: int
    success_rate_min: float
    duration_max_ms: float

    def analysis_fragment(self) -> dict[str, Any]:
        """The preset as a Flagger ``spec.analysis`` fragment."""
        return {
            "interval": self.interval,
            "threshold": self.threshold,
            "maxWeight": self.max_weight,
            "stepWeight": self.step_weight,
            "metrics": [
                {
                    "name": "request-success-rate",
                    "interval": "1m",
                    "thresholdRange": {"min": self.success_rate_min},
                },
                {
                    "name": "request-duration",
                    "interval": "1m",
                    "thresholdRange": {"max": self.duration_max_ms},
                },
            ],
        }


PRESETS: dict[str, Preset] = {
    "development": Preset(
        name="development",
        purpose="Rapid iteration and testing",
        interval="30s",
        max_weight=100,
        step_weight=50,
        threshold=2,
        success_rate_min=80.0,
        duration_max_ms=1000.0,
    ),
    "staging": Preset(
        name="staging",
        purpose="Production-like validation",
        interval="60s",
        max_weight=30,
        step_weight=15,
        threshold=5,
        success_rate_min=95.0,
        duration_max_ms=500.0,
    ),
    "production": Preset(
        name="production",
        purpose="Maximum safety and reliability",
        interval="120s",
        max_weight=20,
        step_weight=5,
        threshold=5,
        success_rate_min=99.5,
        duration_max_ms=500.0,
    ),
}

_STRATEGY_KEYS = ("stepWeight", "stepWeights", "iterations")


def apply_preset(canary_body: Mapping[str, Any], preset: Preset) -> dict[str, Any]:
    """Return a copy of a raw Canary document with the preset's analysis settings filled in."""
    body = dict(copy.deepcopy(canary_body))
    spec = body.setdefault("spec", {})
    if not isinstance(spec, dict):
        return body  # the schema check reports it
    key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec else "canaryAnalysis"
    analysis = spec.get(key)
    if analysis is None:
        analysis = spec[key] = {}
    if not isinstance(analysis, dict):
        return body
    fragment = preset.analysis_fragment()
    for field in ("interval", "threshold"):
        analysis.setdefault(field, fragment[field])
    if not any(analysis.get(k) is not None for k in _STRATEGY_KEYS) and not analysis.get("match"):
        # (a match without a strategy is most likely A/B testing missing its iterations: a step
        # would turn it into weights on the matching requests, so the loader's error stays)
        analysis["stepWeight"] = fragment["stepWeight"]
    if analysis.get("stepWeight") is not None and analysis.get("maxWeight") is None:
        analysis["maxWeight"] = fragment["maxWeight"]
    metrics = analysis.get("metrics")
    if metrics is None:
        analysis["metrics"] = copy.deepcopy(fragment["metrics"])
    elif isinstance(metrics, list):
        # Only well-formed entries take part; the schema check reports the others (a name that
        # is a list, say) after the merge, so the merge itself never fails on them.
        by_name = {
            m["name"]: m for m in metrics if isinstance(m, dict) and isinstance(m.get("name"), str)
        }
        for preset_metric in fragment["metrics"]:
            own = by_name.get(preset_metric["name"])
            if own is not None:
                _fill_missing(own, preset_metric)
    return body


def _fill_missing(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if key == "thresholdRange" and target.get("threshold") is not None:
            continue  # a legacy threshold written in the Canary wins over the preset's range
        if key not in target:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _fill_missing(target[key], value)
