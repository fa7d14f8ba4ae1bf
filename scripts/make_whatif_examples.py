"""Write the labelled example recordings of ``config/examples/whatif/`` (README "What-if").

Synthetic rollouts of the seed's webhook-server (request-success-rate in %, request-duration in
ms, error-rate in %), one sample a minute for 20 minutes, for the canary and the primary: five
healthy releases with the noise, blips and slow starts real services show, and five regressions
of the kinds canaries exist to catch (an error spike, a latency creep, intermittent failures, a
small steady loss, a crash that stops the metrics). Deterministic: the same files every run.

    python3 scripts/make_whatif_examples.py
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "config" / "examples" / "whatif"
MINUTES = 20

#: (success %, duration ms) of the canary at minute m, or None for no sample.
Shape = Callable[[int, random.Random], tuple[float, float] | None]


def healthy(m: int, rng: random.Random) -> tuple[float, float]:
    return min(100.0, rng.gauss(99.8, 0.12)), rng.gauss(215.0, 20.0)


def noisy(m: int, rng: random.Random) -> tuple[float, float]:
    success = min(100.0, rng.gauss(99.2, 0.5))
    return (96.4 if m == 7 else success), rng.gauss(260.0, 45.0)


def blip(m: int, rng: random.Random) -> tuple[float, float]:
    success, duration = healthy(m, rng)
    return (93.8, 540.0) if m == 3 else (success, duration)


def slow_start(m: int, rng: random.Random) -> tuple[float, float]:
    success, duration = healthy(m, rng)
    return success, (480.0 + rng.gauss(0, 20) if m < 2 else duration)


def gappy(m: int, rng: random.Random) -> tuple[float, float] | None:
    return None if 6 <= m < 13 else healthy(m, rng)  # a 7-minute scrape outage


def error_spike(m: int, rng: random.Random) -> tuple[float, float]:
    success, duration = healthy(m, rng)
    return (rng.gauss(91.0, 0.8) if m >= 2 else success), duration


def latency_creep(m: int, rng: random.Random) -> tuple[float, float]:
    success, _ = healthy(m, rng)
    return success, 230.0 + 38.0 * m + rng.gauss(0, 15)


def intermittent(m: int, rng: random.Random) -> tuple[float, float]:
    success, duration = healthy(m, rng)
    return (rng.gauss(93.0, 0.7) if m % 2 else success), duration


def small_loss(m: int, rng: random.Random) -> tuple[float, float]:
    _, duration = healthy(m, rng)
    return rng.gauss(97.6, 0.3), duration


def crash(m: int, rng: random.Random) -> tuple[float, float] | None:
    return healthy(m, rng) if m < 3 else None


RELEASES: dict[str, dict[str, Shape]] = {
    "good": {
        "steady": healthy,
        "noisy": noisy,
        "blip": blip,
        "slow-start": slow_start,
        "gaps": gappy,
    },
    "bad": {
        "error-spike": error_spike,
        "latency-creep": latency_creep,
        "intermittent": intermittent,
        "small-loss": small_loss,
        "crash": crash,
    },
}


def write(path: Path, shape: Shape, seed: int) -> None:
    rng = random.Random(seed)
    rows: list[tuple[int, str, str, str]] = []
    for m in range(MINUTES):
        t = 60 * m
        primary_success, primary_duration = healthy(m, rng)
        sample = shape(m, rng)
        for target, values in (
            ("primary", (primary_success, primary_duration)),
            ("canary", sample),
        ):
            if values is None:
                continue
            success, duration = values
            rows.append((t, target, "request-success-rate", f"{success:.3f}"))
            rows.append((t, target, "request-duration", f"{max(1.0, duration):.1f}"))
            rows.append((t, target, "error-rate", f"{100.0 - success:.3f}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["time", "target", "metric", "value"])
        out.writerows(rows)


def main() -> None:
    seed = 7
    for label, shapes in RELEASES.items():
        for name, shape in shapes.items():
            seed += 1
            write(OUT / label / f"{name}.csv", shape, seed)


if __name__ == "__main__":
    main()
