"""``canary-engine sweep`` on the command line: read, replay with a progress bar, print, report.

Imported only when the command runs (``--help`` stays fast). The progress bar (tqdm) draws on
stderr when it is a terminal and is silent when piped, so ``--output json`` stays one document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from config import Problem, SpecError
from engine.cli import check_output_path
from engine.cli.grid import load_sweep_file
from engine.cli.simulate import bundled_example
from engine.cli.sweep import Progress, load_sweep_inputs, render_table, run_sweep


def run_sweep_command(args: argparse.Namespace) -> int:
    limit = args.false_rollback_limit
    if limit is not None and not 0 <= limit <= 1:
        raise SpecError(
            Problem("--false-rollback-limit", f"must be a fraction 0..1 (0.02 is 2%), got {limit}")
        )
    if args.report is not None:
        check_output_path("--report", args.report)
    path = args.sweep_file or bundled_example("whatif/sweep.yaml")
    sweep = load_sweep_file(path)
    inputs = load_sweep_inputs(
        sweep,
        canary=args.canary,
        templates=args.template,
        recordings=args.recordings,
        labels=args.labels,
        false_rollback_limit=limit,
        mesh_provider=args.mesh_provider,
    )
    with _progress_bar(len(inputs.settings) * len(inputs.recordings)) as progress:
        outcome = run_sweep(inputs, full_engine=args.full_engine, progress=progress)
    document = outcome.to_json()
    if args.report is not None:
        _write_report(args.report, document, title=f"sweep {path}")
    if args.output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(render_table(outcome, colour=colour) + "\n")
    return 0


@contextmanager
def _progress_bar(total: int) -> Iterator[Progress | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="replay", file=sys.stderr, leave=False) as bar:

        def update(done: int, total: int) -> None:
            bar.update(done - bar.n)
            if done == total:
                bar.refresh()  # the batch may finish within tqdm's redraw interval: show it

        yield update


def _write_report(path: str, document: dict[str, object], *, title: str) -> None:
    from engine.cli.report_sweep import write_sweep_report

    try:
        write_sweep_report({**document, "title": title}, path)
    except OSError as exc:
        raise SpecError(
            Problem("--report", f"cannot write {path}: {exc.strerror or exc}")
        ) from None
    sys.stderr.write(f"report written to {path}\n")
