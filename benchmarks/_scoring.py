"""Scoring of the detection benchmark (``shared/docs/detection-benchmark.md`` §3.5).

The scorer joins the engine's decisions (``Outcome``, one per scenario and setting) with the
answer key (``_scenarios.Answer``); the engine never sees the latter.

Definitions (``N`` = 12 metric-evaluating iterations, ``k`` = onset iteration, ``r`` = number of
metric-evaluating ticks before the tick that executed the rollback, so ``r - k >= T`` for a
regression with no failed check before its onset):

* bad scenarios: *detected* = rolled back with ``r > k``; *premature* = rolled back with
  ``r <= k`` (a false alarm, not a detection); *missed* = promoted or undecided (undecided, i.e.
  the recording ran out, is also counted on its own).
* TTD = ``r - k`` over detected scenarios: median, p90 (numpy's linear interpolation) and max;
  censored mean counts a missed scenario as ``N - k + 1`` (premature ones are left out).
  Wall-clock TTD = TTD x the series' step, per interval group.
* good scenarios: false rollback rate = rolled back / all, with a Wilson 95% CI; also per series.
  Promotion delay = metric-evaluating ticks used by a promoted good scenario beyond ``N``.
* per-interval false-check rate: metric-evaluating ticks with a failed check, over all clean
  ticks (every tick of a good scenario, ticks ``< k`` of a bad one).
* A/A and common-mode scenarios: promotion rate; ambiguous: rollback rate. Reported separately.
* Macro = mean over series of the per-series rate (each series weighted equally); micro = pooled
  over scenarios. Headline numbers are micro, with macro next to them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from _scenarios import N_ITERATIONS, Answer

Z95 = 1.959963984540054
FRR_TARGETS = (0.002, 0.005, 0.01, 0.02, 0.05)


@dataclass(slots=True)
class Outcome:
    """What the engine decided for one scenario under one setting."""

    id: str
    setting: str
    result: str  # promoted | rolled_back | undecided | error
    r: int | None  # metric-evaluating ticks before the rollback tick (rolled back only)
    eval_ticks: int  # metric-evaluating ticks in the whole run
    failed: list[bool] = field(default_factory=list)  # per metric-evaluating tick
    inconclusive: list[bool] = field(default_factory=list)  # per metric-evaluating tick
    error: str | None = None
    #: No check of the run was NO_DATA or INCONCLUSIVE: a metric's ``onNoData`` (which maps only
    #: those) could not have changed a verdict, so the run is the same under any policy.
    policy_free: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (nan, nan for n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rate(hits: int, n: int) -> float | None:
    return hits / n if n else None


def _macro(pairs: Iterable[tuple[str, bool]]) -> float | None:
    """Mean over groups (series) of the per-group hit rate."""
    by: dict[str, list[bool]] = defaultdict(list)
    for key, hit in pairs:
        by[key].append(hit)
    if not by:
        return None
    return float(np.mean([np.mean(v) for v in by.values()]))


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(arr)),
        "p90": float(np.percentile(arr, 90)),
        "max": float(arr.max()),
    }


def _proportion(hits: int, n: int, macro: float | None) -> dict[str, Any]:
    lo, hi = wilson(hits, n)
    return {
        "n": n,
        "hits": hits,
        "rate": _rate(hits, n),
        "ci95": [lo, hi] if n else None,
        "macro": macro,
    }


def _series_key(a: Answer) -> str:
    return f"{a.dataset}/{a.series}"


def _ttd(a: Answer, o: Outcome) -> int:
    assert o.r is not None
    return o.r - (a.k or 0)


def score_bad(pairs: Sequence[tuple[Answer, Outcome]]) -> dict[str, Any]:
    detected: list[tuple[Answer, Outcome]] = []
    premature = missed = undecided = errors = 0
    censored: list[float] = []
    hits: list[tuple[str, bool]] = []
    for a, o in pairs:
        k = a.k or 0
        if o.result == "error":
            errors += 1
        ok = o.result == "rolled_back" and o.r is not None and o.r > k
        hits.append((_series_key(a), ok))
        if ok:
            detected.append((a, o))
            censored.append(float(_ttd(a, o)))
        elif o.result == "rolled_back":
            premature += 1
        else:
            missed += 1
            undecided += o.result == "undecided"
            censored.append(float(N_ITERATIONS - k + 1))
    n = len(pairs)
    ttd = [float(_ttd(a, o)) for a, o in detected]
    wall: dict[str, list[float]] = defaultdict(list)
    for a, o in detected:
        wall[a.interval_group].append(_ttd(a, o) * a.step_seconds)
    return {
        "detection": _proportion(len(detected), n, _macro(hits)),
        "missed": {"n": missed, "rate": _rate(missed, n), "undecided": undecided},
        "premature": {
            "n": premature,
            "rate": _rate(premature, n),
            "of_k_gt_0": sum(1 for a, _ in pairs if (a.k or 0) > 0),
        },
        "errors": errors,
        "ttd_intervals": _stats(ttd),
        "ttd_censored_mean": float(np.mean(censored)) if censored else None,
        "ttd_seconds_by_interval_group": {g: _stats(v) for g, v in sorted(wall.items())},
    }


def score_good(pairs: Sequence[tuple[Answer, Outcome]]) -> dict[str, Any]:
    rolled = [(a, o) for a, o in pairs if o.result == "rolled_back"]
    hits = [(_series_key(a), o.result == "rolled_back") for a, o in pairs]
    per_series: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, hit in hits:
        per_series[key][0] += hit
        per_series[key][1] += 1
    delays = [o.eval_ticks - N_ITERATIONS for _, o in pairs if o.result == "promoted"]
    return {
        "false_rollback": _proportion(len(rolled), len(pairs), _macro(hits)),
        "undecided": sum(1 for _, o in pairs if o.result == "undecided"),
        "errors": sum(1 for _, o in pairs if o.result == "error"),
        "promotion_delay": {
            "mean": float(np.mean(delays)) if delays else None,
            "max": int(max(delays)) if delays else None,
        },
        "false_rollback_by_series": {
            key: {"rolled_back": v[0], "n": v[1]} for key, v in sorted(per_series.items()) if v[0]
        },
    }


def false_check_rate(
    good: Sequence[tuple[Answer, Outcome]], bad: Sequence[tuple[Answer, Outcome]]
) -> dict[str, Any]:
    failed = inconclusive = total = 0
    for _, o in good:
        failed += sum(o.failed)
        inconclusive += sum(o.inconclusive)
        total += len(o.failed)
    for a, o in bad:
        k = a.k or 0
        failed += sum(o.failed[:k])
        inconclusive += sum(o.inconclusive[:k])
        total += len(o.failed[:k])
    return {
        "failed": failed,
        "intervals": total,
        "rate": _rate(failed, total),
        "inconclusive": inconclusive,
        "inconclusive_rate": _rate(inconclusive, total),
    }


def score_promote_rate(pairs: Sequence[tuple[Answer, Outcome]]) -> dict[str, Any]:
    promoted = sum(1 for _, o in pairs if o.result == "promoted")
    hits = [(_series_key(a), o.result == "promoted") for a, o in pairs]
    out = _proportion(promoted, len(pairs), _macro(hits))
    out["rolled_back"] = sum(1 for _, o in pairs if o.result == "rolled_back")
    return out


def score_rollback_rate(pairs: Sequence[tuple[Answer, Outcome]]) -> dict[str, Any]:
    rolled = sum(1 for _, o in pairs if o.result == "rolled_back")
    hits = [(_series_key(a), o.result == "rolled_back") for a, o in pairs]
    return _proportion(rolled, len(pairs), _macro(hits))


BREAKDOWNS: dict[str, Callable[[Answer], str]] = {
    "dataset": lambda a: a.dataset,
    "metric_kind": lambda a: a.metric_kind,
    "interval_group": lambda a: a.interval_group,
    "persistence": lambda a: a.persistence or "-",
    "onset": lambda a: "k=0" if (a.k or 0) == 0 else "k>0",
}


def score_setting(pairs: Sequence[tuple[Answer, Outcome]]) -> dict[str, Any]:
    """Every §3.5 number for one setting."""
    by_kind: dict[str, list[tuple[Answer, Outcome]]] = defaultdict(list)
    for a, o in pairs:
        by_kind[a.kind].append((a, o))
    bad, good = by_kind["bad"], by_kind["good"]
    out: dict[str, Any] = {
        "bad": score_bad(bad),
        "good": score_good(good),
        # The second scoring (``_scenarios``: "Unlabelled anomalies in good windows"): the good
        # windows an outlier detector does not mark. Reported beside "good", never instead.
        "good_unmarked": score_good([(a, o) for a, o in good if not a.unlabelled_anomaly]),
        # The bad scenarios of §3.2 as written (``_scenarios``: "Two sets of bad scenarios"):
        # those whose history holds no other incident. Reported beside "bad", never instead.
        "bad_as_written": score_bad([(a, o) for a, o in bad if not a.history_incident]),
        "common_mode_as_written": score_promote_rate(
            [(a, o) for a, o in by_kind["common_mode"] if not a.history_incident]
        ),
        "false_check_rate": false_check_rate(good, bad),
        "aa": score_promote_rate(by_kind["aa"]),
        "common_mode": score_promote_rate(by_kind["common_mode"]),
        "ambiguous": score_rollback_rate(by_kind["ambiguous"]),
        "errors": sum(1 for _, o in pairs if o.result == "error"),
        "breakdowns": {},
    }
    for name, keyf in BREAKDOWNS.items():
        groups: dict[str, dict[str, Any]] = {}
        bad_groups: dict[str, list[tuple[Answer, Outcome]]] = defaultdict(list)
        good_groups: dict[str, list[tuple[Answer, Outcome]]] = defaultdict(list)
        for a, o in bad:
            bad_groups[keyf(a)].append((a, o))
        if name not in ("persistence", "onset"):
            for a, o in good:
                good_groups[keyf(a)].append((a, o))
        for g in sorted(set(bad_groups) | set(good_groups)):
            entry: dict[str, Any] = {}
            if bad_groups.get(g):
                sb = score_bad(bad_groups[g])
                entry["bad"] = {
                    "detection": sb["detection"],
                    "premature": sb["premature"]["n"],
                    "ttd_intervals": sb["ttd_intervals"],
                    "ttd_seconds": sb["ttd_seconds_by_interval_group"],
                }
            if good_groups.get(g):
                entry["good"] = {"false_rollback": score_good(good_groups[g])["false_rollback"]}
            groups[g] = entry
        out["breakdowns"][name] = groups
    return out


def tradeoff(
    scores: dict[str, dict[str, Any]],
    families: dict[str, str],
    *,
    good: str = "good",
    bad: str = "bad",
) -> dict[str, Any]:
    """Per setting (false rollback rate, detection, median TTD) and the best detection of each
    family at a false rollback rate <= X; ``good`` names the good windows the false rollback
    rate is over (``good``: all of them; ``good_unmarked``: the second scoring), ``bad`` the bad
    scenarios detection is over (``bad``: the wider set; ``bad_as_written``: §3.2 as written)."""
    points = []
    for name, sc in scores.items():
        if sc.get("unavailable"):
            continue
        points.append(
            {
                "setting": name,
                "family": families[name],
                "false_rollback": sc[good]["false_rollback"]["rate"],
                "detection": sc[bad]["detection"]["rate"],
                "median_ttd": sc[bad]["ttd_intervals"]["median"],
            }
        )
    best: dict[str, dict[str, Any]] = {}
    for family in sorted(set(families.values())):
        best[family] = {}
        for x in FRR_TARGETS:
            cands = [
                p
                for p in points
                if p["family"] == family
                and p["false_rollback"] is not None
                and p["false_rollback"] <= x + 1e-12
                and p["detection"] is not None
            ]
            if not cands:
                best[family][f"{x:g}"] = None
                continue
            top = max(
                cands,
                key=lambda p: (
                    p["detection"],
                    -(p["median_ttd"] if p["median_ttd"] is not None else math.inf),
                    -p["false_rollback"],
                ),
            )
            best[family][f"{x:g}"] = top
    return {"points": points, "best_detection_at_false_rollback": best}
