"""``canary-engine record``: capture a recording from live metric providers (interfaces.md §1).

A thin shell around ``analysis.record``: read and check the inputs, parse the time range against
the engine clock's wall time, show progress on a terminal, write the file. Exit statuses: 0
written, 2 bad input (unreadable or invalid files, bad time range or step, unrenderable or
ambiguous query), 4 a provider unreachable or rejected a query (the message names it). Queries
with no data only warn: the recording has no samples for them. Prometheus queries go to
``--prometheus`` (required only when a check queries Prometheus); other MetricTemplates go to
their own provider, with the credentials of the Secrets found in the ``--canary`` / ``--template``
files (their values are redacted like the URL's).

The ``--prometheus`` URL may carry ``user:password@``, and a template's headers a token: every
line ``record`` prints is redacted with them (``analysis._text.redact``; the messages are built in
``analysis._record`` and name the URL as given), and so is what the HTTP libraries log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Never, TextIO

from analysis import (
    MetricQueryError,
    RecordResult,
    header_secrets,
    parse_step,
    parse_time,
    record,
    redact,
    url_secrets,
    write_recording,
)
from config import (
    DEFAULT_MESH_PROVIDER,
    CanaryEngineError,
    MetricTemplate,
    Problem,
    SpecError,
    load_manifests,
)
from engine.cli.simulate import single_canary
from engine.shell import logs
from engine.shell.clock import RealClock
from traffic import SecretDataError, decode_secret_data

EXIT_WRITTEN = 0
EXIT_BAD_INPUT = 2
EXIT_PROMETHEUS = 4
#: --prometheus is checked by analysis.record: only checks that query Prometheus need it.
_REQUIRED = (
    ("canary", "--canary FILE"),
    ("start", "--start T"),
    ("end", "--end T"),
    ("output", "-o FILE"),
)


def run_record(
    args: argparse.Namespace,
    *,
    now: Callable[[], datetime] | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``record`` with parsed options; return the exit status. Never raises for bad input."""
    err = stderr if stderr is not None else sys.stderr
    secrets = url_secrets(str(getattr(args, "prometheus", None) or ""))
    logs.add_secrets(secrets)
    logs.guard_library_logs()  # urllib3 and requests log connection URLs

    def say(line: str) -> None:
        err.write(redact(line, secrets) + "\n")

    try:
        result, output = _record(args, now or RealClock().utcnow, err, secrets)
    except SpecError as exc:
        say(f"canary-engine record: {exc.render()}")
        return EXIT_BAD_INPUT
    except MetricQueryError as exc:
        say(f"canary-engine record: {exc}")
        return EXIT_PROMETHEUS
    except CanaryEngineError as exc:
        say(f"canary-engine record: {exc}")
        return EXIT_BAD_INPUT
    for warning in result.warnings:
        say(f"warning: {warning}")
    say(
        f"wrote {result.samples} samples in {len(result.series)} series "
        f"({result.queries} range queries, step {result.step:g}s) to {output}"
    )
    return EXIT_WRITTEN


def _record(
    args: argparse.Namespace, now: Callable[[], datetime], err: TextIO, secrets: list[str]
) -> tuple[RecordResult, str]:
    """Record as ``args`` say; add the templates' credential headers to ``secrets``."""
    missing = [flag for name, flag in _REQUIRED if not getattr(args, name, None)]
    if missing:
        raise SpecError([Problem(flag, "is required") for flag in missing])
    output = str(args.output)
    if Path(output).suffix.lower() not in (".csv", ".json"):
        raise SpecError(Problem("-o", f"{output}: the file name must end in .csv or .json"))
    manifests = load_manifests(
        [args.canary, *(getattr(args, "template", None) or [])],
        preset=getattr(args, "preset", None),
    )
    canary, templates = single_canary(manifests, args.canary)
    for template in templates.values():
        secrets += _template_header_secrets(template)
    wall = now()
    problems: list[Problem] = []
    times: dict[str, datetime] = {}
    for name in ("start", "end"):
        try:
            times[name] = parse_time(str(getattr(args, name)), now=wall)
        except ValueError as exc:
            problems.append(Problem(f"--{name}", str(exc)))
    step = canary.spec.effective_analysis.interval_seconds
    if getattr(args, "step", None):
        try:
            step = parse_step(str(args.step))
        except ValueError as exc:
            problems.append(Problem("--step", str(exc)))
    if problems:
        raise SpecError(problems)
    # --mesh-provider already defaults to CANARY_ENGINE_MESH_PROVIDER (the parser reads it)
    mesh_provider = getattr(args, "mesh_provider", None) or DEFAULT_MESH_PROVIDER
    progress = _progress_printer(err) if err.isatty() else None
    credentials = _secrets(manifests.objects)
    for data in credentials.values():
        known = [value for value in data.values() if value]
        logs.add_secrets(known)
        secrets += known
    # The builtin queries are chosen exactly as the controller chooses them.
    from traffic import builtin_queries_provider

    result = record(
        str(getattr(args, "prometheus", None) or ""),
        canary,
        templates,
        provider=builtin_queries_provider(canary.spec.provider, mesh_provider),
        start=times["start"],
        end=times["end"],
        step=step,
        progress=progress,
        secrets=credentials,
    )
    write_recording(output, result)
    return result, output


def _secrets(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The Secrets in the manifest files, "<namespace>/<name>" -> decoded data: how record gets
    a non-Prometheus template's credentials (``data`` base64, ``stringData`` plain, as
    Kubernetes reads them)."""
    found: dict[str, dict[str, str]] = {}
    for body in objects:
        if body.get("kind") != "Secret" or body.get("apiVersion") != "v1":
            continue
        meta = body.get("metadata") or {}
        name = f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"
        try:
            data = decode_secret_data(body.get("data") or {})
        except SecretDataError as exc:
            raise SpecError(
                Problem(f"Secret {name} data.{exc.key}", "is not base64-encoded UTF-8 text")
            ) from None
        data.update({str(k): str(v) for k, v in (body.get("stringData") or {}).items()})
        found[name] = data
    return found


def _template_header_secrets(template: MetricTemplate) -> list[str]:
    headers = template.spec.provider.headers or {}
    pairs = [
        (name, value)
        for name, values in headers.items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    found = header_secrets(pairs)
    logs.add_secrets(found)
    return found


def _progress_printer(err: TextIO) -> Callable[[int, int, str], None]:
    """A tqdm bar on the terminal: one step per range query, named after the query that ran
    (each drawn: a range query takes far longer than a redraw)."""
    from tqdm import tqdm

    bars: list[tqdm[Never]] = []

    def show(done: int, total: int, what: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, file=err, unit="query", ncols=100, mininterval=0))
        bar = bars[0]
        bar.set_description_str(what, refresh=False)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return show
