"""CPU time to simulate the bundled production-preset rollout (target: under 20 ms after start-up).

    python3 benchmarks/bench_simulate.py [--runs 50]

"After start-up" means: imports done and inputs parsed once; each measured run builds a fresh
in-memory cluster and virtual clock and replays the whole rollout (initialisation included).
Reports the median and best CPU time (time.process_time) over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from engine.cli.simulate import bundled_example, load_inputs, simulate
from engine.shell import logs

TARGET_MS = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    logs.configure("console", "error")  # as the CLI does for simulate: logs are not the product
    manifests, canary, recording = load_inputs(
        bundled_example("webhook-server-minimal.yaml"),
        [],
        bundled_example("webhook-server-good.csv"),
        "production",
    )
    result = asyncio.run(simulate(manifests, canary, recording))  # warm-up
    assert result.result == "promoted", result.result
    samples = []
    for _ in range(args.runs):
        start = time.process_time()
        asyncio.run(simulate(manifests, canary, recording))
        samples.append((time.process_time() - start) * 1000)
    median = statistics.median(samples)
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(
        f"production-preset rollout: {len(result.ticks)} ticks, decided at {result.decided_at:g}s"
    )
    print(
        f"CPU per simulation: median {median:.2f} ms, best {min(samples):.2f} ms "
        f"over {args.runs} runs (target < {TARGET_MS:g} ms) -> "
        f"{'OK' if median < TARGET_MS else 'OVER TARGET'}"
    )


if __name__ == "__main__":
    main()
