"""Regenerate the bundled example recordings in config/examples (deterministic; seed fixed).

    python scripts/generate_examples.py

webhook-server-good.csv   healthy release: ~99.9 % success, ~210 ms P99, ~0.1 % errors
webhook-server-bad.json   bad release: from t=90 s the canary answers ~9 % 5xx and slows down
claude-runner-good.csv    healthy background worker: CPU ~0.35 cores, ~600 MiB, 99 % jobs succeed
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "config" / "examples"
STEP, END = 30, 900


def webhook_server(bad: bool, rng: random.Random) -> list[tuple[int, str, str, float]]:
    rows = []
    for t in range(0, END + 1, STEP):
        for target in ("canary", "primary"):
            degraded = bad and target == "canary" and t >= 90
            success = (91.0 if degraded else 99.9) + rng.uniform(-0.08, 0.08)
            duration = (640 if degraded else 210) + rng.uniform(-15, 15)
            rows.append((t, target, "request-success-rate", round(success, 3)))
            rows.append((t, target, "request-duration", round(duration, 1)))
            rows.append((t, target, "error-rate", round(100 - success, 3)))
    return rows


def claude_runner(rng: random.Random) -> list[tuple[int, str, str, float]]:
    rows = []
    for t in range(0, END + 1, STEP):
        for target in ("canary", "primary"):
            rows.append((t, target, "cpu-usage", round(0.35 + rng.uniform(-0.05, 0.05), 3)))
            rows.append((t, target, "memory-usage", float(int(629145600 + rng.uniform(-4e7, 4e7)))))
            rows.append((t, target, "job-success-rate", round(99.0 + rng.uniform(-0.5, 0.5), 2)))
    return rows


def write_csv(path: Path, rows: list[tuple[int, str, str, float]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["time", "target", "metric", "value"])
        writer.writerows(rows)


def write_json(path: Path, rows: list[tuple[int, str, str, float]]) -> None:
    series: dict[tuple[str, str], list[list[float]]] = {}
    for t, target, metric, value in rows:
        series.setdefault((target, metric), []).append([t, value])
    doc = {
        "version": 1,
        "series": [
            {"target": target, "metric": metric, "samples": samples}
            for (target, metric), samples in series.items()
        ],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")


def main() -> None:
    write_csv(OUT / "webhook-server-good.csv", webhook_server(False, random.Random(1)))
    write_json(OUT / "webhook-server-bad.json", webhook_server(True, random.Random(2)))
    write_csv(OUT / "claude-runner-good.csv", claude_runner(random.Random(3)))


if __name__ == "__main__":
    main()
