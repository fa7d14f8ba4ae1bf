"""``canary-engine report NAME -n NS -o FILE.html``: "what happened to my last rollout", in one
command (issue 8, item 5).

1. Reads the Canary, its MetricTemplates, its target Deployment and its Events from the cluster
   (GETs and one LIST through the Cluster seam, nothing cached).
2. Finds its last analysis window: from the newest ``New revision detected!`` event (the moment
   the new revision was picked up: simulate's time 0) to the status' ``lastTransitionTime`` when
   the run has ended (Succeeded / Failed), else now. ``--start`` / ``--end`` override either
   (Kubernetes keeps Events for an hour by default, so an older rollout needs ``--start``).
3. Records that window from Prometheus exactly as ``canary-engine record`` does
   (``analysis.record``: every metric for the canary and the ``-primary`` target, one sample per
   analysis interval), plus the history a comparative judge reads before time 0.
4. Replays it with ``simulate`` and writes simulate's HTML report (engine.cli.report_html),
   headed by what the cluster itself says: phase, counters and the events with their real times.

The replay assumes every webhook answered 2xx (a recording from Prometheus has no webhook
answers; the cluster's events show the real ones), and the report says so.

Exit statuses: 0 written, 1 the Canary does not exist, 2 bad input (options, an invalid Canary,
no window to replay), 4 the API server or Prometheus is unreachable or refused a request.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

from analysis import (
    MetricQueryError,
    Recording,
    parse_time,
    record,
    redact,
    url_secrets,
)
from config import (
    DEFAULT_MESH_PROVIDER,
    Canary,
    CanaryEngineError,
    Manifests,
    MetricTemplate,
    Phase,
    Problem,
    SpecError,
    parse_canary,
    parse_duration,
    parse_metric_template,
)
from engine.cli import check_output_path
from engine.cli.canary_view import canary_events, event_time
from engine.cli.report_page import escape, table
from engine.shell import logs
from engine.shell.clock import RealClock
from traffic import (
    CANARY,
    DEPLOYMENT,
    EVENT,
    METRIC_TEMPLATE,
    ClusterError,
    ObjectRef,
    builtin_queries_provider,
    open_kube_cluster,
)
from traffic.cluster import ReadBody, default_namespace

EXIT_WRITTEN = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 4
#: The event Flagger (and canary-engine) records when a new revision starts an analysis.
REVISION_EVENT = "New revision detected"
#: A judge's history is recorded up to this far back (its default window; longer windows are
#: capped so a report does not ask Prometheus for weeks of samples).
MAX_HISTORY_SECONDS = 86_400.0
_ENDED = (Phase.SUCCEEDED, Phase.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOptions:
    name: str
    output: str
    namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    prometheus: str | None = None
    start: str | None = None
    end: str | None = None
    mesh_provider: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterState:
    """What the cluster says about one Canary."""

    canary: ReadBody
    templates: list[ReadBody]
    deployment: ReadBody | None
    events: list[ReadBody]


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    start: datetime
    end: datetime
    #: How each end was found, for the report ("the newest 'New revision detected!' event").
    start_from: str
    end_from: str


class _NotFound(Exception):
    pass


def run_report(options: ReportOptions, err: TextIO = sys.stderr) -> int:
    """Run ``report``; return the exit status. Never raises for bad input or an unreachable
    server: one readable line on ``err``, redacted."""
    secrets = url_secrets(options.prometheus or "")
    logs.add_secrets(secrets)
    logs.guard_library_logs()

    def say(line: str) -> None:
        err.write(redact(line, secrets) + "\n")

    try:
        check_output_path("-o", options.output)
        namespace = options.namespace or default_namespace(
            options.kubeconfig, context=options.context
        )
        state = asyncio.run(_read_cluster(options, namespace))
        summary = _report(options, state, RealClock().utcnow())
    except _NotFound as exc:
        say(f"canary-engine report: {exc}")
        return EXIT_NOT_FOUND
    except SpecError as exc:
        say(f"canary-engine report: {exc.render()}")
        return EXIT_BAD_INPUT
    except (ClusterError, MetricQueryError) as exc:
        say(f"canary-engine report: {exc}")
        return EXIT_UNREACHABLE
    except CanaryEngineError as exc:
        say(f"canary-engine report: {exc}")
        return EXIT_BAD_INPUT
    say(summary)
    return EXIT_WRITTEN


async def _read_cluster(options: ReportOptions, namespace: str) -> ClusterState:
    clock = RealClock()
    async with open_kube_cluster(
        options.kubeconfig,
        sleep=clock.sleep,
        namespaces=(namespace,),
        cache_kinds=(),  # a handful of GETs and one LIST
        context=options.context,
    ) as cluster:
        body = await cluster.get(ObjectRef(CANARY, namespace, options.name))
        if body is None:
            raise _NotFound(f"canary {namespace}/{options.name} not found")
        spec = body.get("spec") or {}
        analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
        templates = []
        for metric in analysis.get("metrics") or []:
            ref = (metric or {}).get("templateRef") or {}
            if not ref.get("name"):
                continue
            where = ObjectRef(METRIC_TEMPLATE, ref.get("namespace") or namespace, ref["name"])
            found = await cluster.get(where)
            if found is None:
                raise SpecError(
                    Problem(
                        f"metric {metric.get('name')!r} templateRef",
                        f"MetricTemplate {where.namespace}/{where.name} not found in the cluster",
                    )
                )
            templates.append(found)
        target = (spec.get("targetRef") or {}).get("name")
        deployment = (
            await cluster.get(ObjectRef(DEPLOYMENT, namespace, str(target))) if target else None
        )
        events = canary_events(await cluster.list(EVENT, namespace), namespace, options.name)
    return ClusterState(canary=body, templates=templates, deployment=deployment, events=events)


def analysis_window(
    canary: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    start: str | None = None,
    end: str | None = None,
) -> Window:
    """The last analysis window of a Canary (see the module docstring); SpecError when there is
    none to replay, saying which option gives it."""
    problems: list[Problem] = []
    found_start: datetime | None = None
    start_from = ""
    if start is not None:
        try:
            found_start, start_from = parse_time(start, now=now), "--start"
        except ValueError as exc:
            problems.append(Problem("--start", str(exc)))
    else:
        revisions = [
            moment
            for e in events
            if str(e.get("message", "")).startswith(REVISION_EVENT)
            and (moment := _timestamp(event_time(e), now)) is not None
        ]
        if revisions:
            found_start = max(revisions)
            start_from = f"the newest '{REVISION_EVENT}!' event"
        else:
            problems.append(
                Problem(
                    "--start",
                    f"the Canary has no '{REVISION_EVENT}!' event (Kubernetes keeps events for "
                    "an hour by default): give --start (and --end) for the window to replay",
                )
            )
    status = canary.get("status") or {}
    found_end = now
    end_from = "now (the analysis has not ended)"
    if end is not None:
        try:
            found_end, end_from = parse_time(end, now=now), "--end"
        except ValueError as exc:
            problems.append(Problem("--end", str(exc)))
    elif status.get("phase") in _ENDED and (
        ended := _timestamp(str(status.get("lastTransitionTime", "")), now)
    ):
        if found_start is None or ended > found_start:
            found_end = ended
            end_from = f"status.lastTransitionTime (phase {status['phase']})"
    if problems:
        raise SpecError(problems)
    assert found_start is not None
    if found_end <= found_start:
        raise SpecError(
            Problem(
                "--end",
                f"the window ends ({found_end.isoformat()}) before it starts "
                f"({found_start.isoformat()}, {start_from})",
            )
        )
    return Window(start=found_start, end=found_end, start_from=start_from, end_from=end_from)


def _timestamp(text: str, now: datetime) -> datetime | None:
    """An API timestamp (RFC 3339), or None for an empty or malformed one: events may be
    written by anyone, and a bad one must not stop the report."""
    if not text[:1].isdigit() or "T" not in text:
        return None
    try:
        return parse_time(text, now=now)
    except ValueError:
        return None


def judge_history_seconds(canary: Canary) -> float:
    """How far before time 0 a comparative judge of this Canary reads (0 without a judge)."""
    windows = [
        parse_duration(m.judge.window)
        for m in canary.spec.effective_analysis.metrics
        if m.judge is not None
    ]
    return min(max(windows, default=0.0), MAX_HISTORY_SECONDS)


def _clean(body: ReadBody) -> dict[str, Any]:
    """A body as a manifest file would hold it: no status, no server-set metadata."""
    out = dict(copy.deepcopy(body))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in ("resourceVersion", "uid", "generation", "managedFields", "creationTimestamp"):
        meta.pop(key, None)
    return out


def _report(options: ReportOptions, state: ClusterState, now: datetime) -> str:
    from engine.cli.report_html import write_simulation_report
    from engine.cli.simulate import simulate

    canary = parse_canary(_clean(state.canary))
    templates: dict[tuple[str, str], MetricTemplate] = {}
    for body in state.templates:
        template = parse_metric_template(_clean(body))
        templates[(template.metadata.namespace, template.metadata.name)] = template
    window = analysis_window(
        state.canary, state.events, now=now, start=options.start, end=options.end
    )
    history = judge_history_seconds(canary)
    step = canary.spec.effective_analysis.interval_seconds
    # Start the recording on the analysis grid, ``history`` before time 0, so sample k*step
    # falls on tick k of the replay.
    before = step * int(history // step)
    # The builtin queries the controller ran (a Linkerd mesh runs Linkerd's for every Canary).
    provider = builtin_queries_provider(
        canary.spec.provider, options.mesh_provider or DEFAULT_MESH_PROVIDER
    )
    prometheus = options.prometheus or canary.spec.metrics_server or ""
    recorded = record(
        prometheus,
        canary,
        templates,
        provider=provider,
        start=window.start - timedelta(seconds=before),
        end=window.end,
        step=step,
    )
    source = f"Prometheus {prometheus} from {_iso(window.start)} to {_iso(window.end)}"
    recording = Recording(
        {key: [(t - before, v) for t, v in samples] for key, samples in recorded.series.items()},
        source=redact(source),
    )
    manifests = Manifests(
        canaries=[canary],
        templates=list(templates.values()),
        objects=[_clean(state.deployment)] if state.deployment else [],
    )
    result = asyncio.run(simulate(manifests, canary, recording, mesh_provider=provider))
    result.warnings[:0] = recorded.warnings
    write_simulation_report(
        result,
        recording,
        options.output,
        preface=[_cluster_section(state, window, recorded.queries)],
    )
    verdict = result.result.replace("_", " ")
    phase = (state.canary.get("status") or {}).get("phase") or "unknown"
    return (
        f"report written to {options.output}: the cluster says {phase}; the replay of "
        f"{_iso(window.start)} .. {_iso(window.end)} {verdict}"
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cluster_section(state: ClusterState, window: Window, queries: int) -> str:
    status = state.canary.get("status") or {}
    rows = [
        ("phase", str(status.get("phase") or "-")),
        ("canary weight", str(status.get("canaryWeight", 0))),
        ("failed checks", str(status.get("failedChecks", 0))),
        ("last transition", str(status.get("lastTransitionTime") or "-")),
        ("window start", f"{_iso(window.start)} ({window.start_from})"),
        ("window end", f"{_iso(window.end)} ({window.end_from})"),
        ("range queries", str(queries)),
    ]
    events = [
        (
            (event_time(e), str(e.get("type") or "Normal"), str(e.get("message") or "")),
            str(e.get("type") or "Normal"),
        )
        for e in state.events
    ]
    return "\n".join(
        [
            "<h2>What the cluster says</h2>",
            table(["status", "value"], [(row, "") for row in rows], numeric=set()),
            table(["time", "type", "message"], events, numeric=set())
            if events
            else "<p class='note'>No events about this Canary in the cluster.</p>",
            "<p class='note'>"
            + escape(
                "Below: the window replayed on a virtual clock from what Prometheus recorded "
                "(time 0 is the window's start). A recording has no webhook answers, so in the "
                "replay every webhook answers 2xx; their real answers are in the events above."
            )
            + "</p>",
            "<h2>Replay</h2>",
        ]
    )
