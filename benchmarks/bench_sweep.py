"""Replays per second of ``canary-engine sweep``: the batch replay beside the single-run engine.

    python3 benchmarks/bench_sweep.py [--settings 200] [--recordings 100] [--single 40]

Target (issue 8): at least 10,000 rollout replays per second for static-threshold settings on a
2-core machine. The workload is the bundled what-if (config/examples/whatif): the webhook-server
Canary with a grid of thresholds, success-rate floors, step weights and intervals, against the
ten labelled recordings, each repeated with its values jittered (so the recordings differ) until
``--recordings`` of them. "Batch" is ``engine.cli.sweep.run_sweep`` with every pair in the batch
replay, timed from parsed inputs to per-setting results (settings validated, plans compiled,
values looked up, decisions made); "single-run" is ``engine.cli.simulate`` per pair in this process,
as ``--full-engine`` does. A sample of pairs is checked to decide the same both ways. CPU time
(time.process_time), so other load on the machine does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import platform
import random
import time
from typing import Literal

from analysis import Recording, load_recording
from config import load_manifests, read_documents
from engine.cli.grid import Setting
from engine.cli.simulate import bundled_example, simulate
from engine.cli.sweep import LabelledRecording, SweepInputs, run_sweep
from engine.shell import logs

TARGET_PER_SECOND = 10_000


def _recordings(count: int) -> list[LabelledRecording]:
    folder = bundled_example("whatif")
    base = sorted(p for p in folder.rglob("*.csv"))
    rng = random.Random(42)
    out: list[LabelledRecording] = []
    for i in range(count):
        path = base[i % len(base)]
        recording = load_recording(path)
        if i >= len(base):  # a jittered copy: same shape, different values
            series = {
                key: [
                    (t, None if v is None else v * (1 + rng.gauss(0, 0.002)))
                    for t, v in zip(*recording.samples(*key, -math.inf, math.inf), strict=True)
                ]
                for key in recording.keys
            }
            recording = Recording(series, source=f"{path.name}#{i}")
        label: Literal["good", "bad"] = "good" if path.parent.name == "good" else "bad"
        out.append(
            LabelledRecording(path=path, name=f"{path.name}#{i}", recording=recording, label=label)
        )
    return out


def _settings(count: int) -> list[Setting]:
    grid = itertools.product(
        ["30s", "1m", "2m"],
        [1, 2, 3, 5],
        [90, 95, 97, 98, 99],
        [5, 10, 15, 20, 30],
        [30, 50, 100],
    )
    out = []
    for i, (interval, threshold, floor, step, max_weight) in enumerate(grid):
        if i == count:
            break
        out.append(
            Setting(
                id=f"s{i + 1}",
                changes={
                    "analysis.interval": interval,
                    "analysis.threshold": threshold,
                    "metrics[request-success-rate].thresholdRange.min": floor,
                    "analysis.stepWeight": step,
                    "analysis.maxWeight": max_weight,
                },
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=int, default=200)
    parser.add_argument("--recordings", type=int, default=100)
    parser.add_argument("--single", type=int, default=40, help="pairs replayed by the engine")
    args = parser.parse_args()
    logs.configure("console", "error")
    canary_path = bundled_example("webhook-server.yaml")
    inputs = SweepInputs(
        canary_body=next(d for d in read_documents(canary_path) if d.get("kind") == "Canary"),
        manifests=load_manifests([canary_path]),
        recordings=_recordings(args.recordings),
        settings=_settings(args.settings),
        false_rollback_limit=0.02,
    )
    pairs = len(inputs.settings) * len(inputs.recordings)

    run_sweep(inputs)  # warm-up
    start = time.process_time()
    outcome = run_sweep(inputs)
    batch_seconds = time.process_time() - start
    assert all(s.engine == "batch" for s in outcome.settings)

    rng = random.Random(7)
    sample = [
        (rng.randrange(len(inputs.settings)), rng.randrange(len(inputs.recordings)))
        for _ in range(args.single)
    ]
    from engine.cli.grid import apply_setting

    canaries = {i: apply_setting(inputs.canary_body, inputs.settings[i]) for i, _ in sample}

    async def single_runs() -> list[str]:
        results: list[str] = []
        for i, j in sample:
            result = await simulate(inputs.manifests, canaries[i], inputs.recordings[j].recording)
            results.append(result.result)
        return results

    start = time.process_time()
    single = asyncio.run(single_runs())
    single_seconds = time.process_time() - start
    for (i, j), result in zip(sample, single, strict=True):
        assert outcome.settings[i].results[j] == result, (i, j)

    batch_rate = pairs / batch_seconds
    single_rate = len(sample) / single_seconds
    print(f"python {platform.python_version()} on {platform.machine()}")
    series = max(len(r.recording.keys) for r in inputs.recordings)
    print(
        f"{len(inputs.settings)} settings x {len(inputs.recordings)} recordings = {pairs:,} "
        f"replays (intervals 30s/1m/2m, up to {series} series each)"
    )
    print(f"batch:      {batch_rate:,.0f} replays/s ({batch_seconds:.3f} s CPU)")
    print(
        f"single-run: {single_rate:,.0f} replays/s (engine.cli.simulate in process, "
        f"{len(sample)} pairs; same decisions as the batch)"
    )
    verdict = "OK" if batch_rate >= TARGET_PER_SECOND else "UNDER TARGET"
    print(
        f"speed-up {batch_rate / single_rate:,.0f}x; target >= {TARGET_PER_SECOND:,} replays/s "
        f"-> {verdict}"
    )


if __name__ == "__main__":
    main()
