"""``canary-engine simulate``: the controller's state machine replayed against a recording.

The same ``CanaryDriver`` as the in-cluster controller runs on a ``VirtualClock`` against an
``InMemoryCluster``, with metric values and webhook answers taken from a recording
(interfaces.md §2). Nothing touches a network and virtual time runs as fast as the code.

Set-up, so that time 0 is "the new revision was just applied" (interfaces.md §2, Semantics):
1. the in-memory cluster is seeded with the Canary (after any preset), its MetricTemplates and
   AlertProviders, and the target Deployment (from the Canary file, or a synthesised one with
   ``SYNTHETIC_REPLICAS`` replicas) carrying the *previous* revision, plus the HPA an
   ``autoscalerRef`` names (from the file, or a synthesised one);
2. the driver initialises the canary exactly as in a cluster (primary created, target scaled to
   zero, phase Initialized) — these ticks are not part of the output;
3. the target's pod template is changed to the recorded revision, and the loop starts at t=0.

The run ends at a verdict, when the recording has ended (its last sample plus the lookback), or at
a bound no realistic recording reaches (README "Input bounds"): ``MAX_TICKS`` ticks or
``MAX_VIRTUAL_SECONDS`` of virtual time, whichever comes first. A run stopped by a bound is
``undecided`` (exit 3) with a warning naming the bound, so a recording with one sample at t=1e9, or
a Canary that never decides, cannot keep simulate busy; memory holds one report per tick, so at
most ``MAX_TICKS`` of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from analysis import (
    LOOKBACK_SECONDS,  # a sample older than this is no data; the run ends this long after the last
    RecordedMetricSource,
    RecordedWebhooks,
    Recording,
    history_samples,
    load_recording,
)
from config import (
    DEFAULT_MESH_PROVIDER,
    Canary,
    Manifests,
    Metric,
    MetricTemplate,
    Phase,
    Problem,
    SpecError,
    format_go_duration,
    load_manifests,
)
from engine.cli._object_shapes import object_problems, seeded
from engine.cli.scheduled_commands import ScheduledCommand, run_with_commands
from engine.core.effects import Alert
from engine.shell.clock import VirtualClock
from engine.shell.loop import CanaryDriver, EngineDeps, Settings, TickReport, run_canary_loop
from traffic import (
    CANARY,
    DAEMONSET,
    DEPLOYMENT,
    HPA,
    KNATIVE_SERVICE,
    SERVICE,
    InMemoryCluster,
    Kind,
    ObjectRef,
    TargetWorkload,
    kind_of,
    router_for,
)

#: Replicas of the target Deployment simulate creates when the Canary file does not include one.
SYNTHETIC_REPLICAS = 10
#: Pod-template annotation simulate uses to tell the previous revision from the recorded one.
REVISION_ANNOTATION = "canary-engine.io/simulated-revision"
#: Ticks allowed for initialisation before the recording starts.
_BOOTSTRAP_TICKS = 10
#: A run stops, undecided, after this many ticks (27.8 hours of 10 s intervals, 6.9 days of 1m):
#: only a Canary that stays undecided for 10 000 analysis rounds reaches it. About 1 KB a tick.
MAX_TICKS = 10_000
#: ... or before virtual time passes this (7 days), whichever comes first.
MAX_VIRTUAL_SECONDS = 7 * 86_400.0

Result = Literal["promoted", "rolled_back", "undecided"]
EXIT_CODES: dict[Result, int] = {"promoted": 0, "rolled_back": 1, "undecided": 3}


@dataclass(slots=True, kw_only=True)
class SimulationResult:
    canary: str
    result: Result
    decided_at: float | None
    ticks: list[TickReport] = field(default_factory=list)
    canary_spec: Canary | None = None
    warnings: list[str] = field(default_factory=list)
    #: Why an undecided run stopped: None when the recording ended, else the bound that stopped
    #: it ("the 10,000-tick limit", "the 7-day virtual-time limit").
    stopped_by: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    def to_json(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "result": self.result,
            "decidedAt": _num(self.decided_at),
            "ticks": [tick_json(t) for t in self.ticks],
            **({"stoppedBy": self.stopped_by} if self.stopped_by else {}),
        }


def tick_json(report: TickReport) -> dict[str, Any]:
    status = report.status
    routes = report.routes
    out: dict[str, Any] = {
        "t": _num(report.t),
        "phase": status.phase.value if status else None,
        "canaryWeight": status.canary_weight if status else 0,
        "primaryWeight": routes.weights.primary if routes else 100,
        "failedChecks": status.failed_checks if status else 0,
        "iterations": status.iterations if status else 0,
        "checks": [c.to_json() for c in report.checks],
        "events": [e.message for e in report.events],
    }
    if routes is not None and routes.achieved is not None:
        out["routedCanaryWeight"] = routes.weights.canary
        out["achievedCanaryWeight"] = routes.achieved.canary
        out["achievedPrimaryWeight"] = routes.achieved.primary
    if report.alerts:
        out["alerts"] = [{"message": a.message, "severity": a.severity} for a in report.alerts]
    if report.hook_calls:
        out["webhooks"] = [
            {"name": h.hook.name, "type": h.hook.hook_type.value, "ok": h.ok}
            for h in report.hook_calls
        ]
    if report.error:
        out["error"] = report.error
    if report.command:
        out["command"] = report.command
    if status is not None and status.paused_at:
        out["paused"] = True
    return out


def _num(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def bundled_example(name: str) -> Path:
    """Path of a file shipped in ``config/examples``."""
    return Path(str(resources.files("config").joinpath("examples", name)))


def load_inputs(
    canary_path: str | Path,
    template_paths: Sequence[str | Path],
    recording_path: str | Path,
    preset: str | None,
    mesh_provider: str | None = None,
) -> tuple[Manifests, Canary, Recording]:
    """Read and validate everything; raise SpecError (exit 2) naming the file and problem.
    ``mesh_provider`` routes a Canary without ``spec.provider`` (its router's rules apply).
    The other objects the files hold are type-checked as an API server would
    (``engine.cli._object_shapes``), so a malformed Deployment is bad input, not a crash."""
    manifests = Manifests()
    problems: list[Problem] = []
    for path in (canary_path, *template_paths):  # one at a time: the objects' file is named
        try:
            found = load_manifests([path], preset=preset, default_provider=mesh_provider)
        except SpecError as exc:
            if exc.source is not None:  # the file could not be read: as load_manifests does
                raise
            problems.extend(exc.problems)
            continue
        problems.extend(object_problems(found.objects, path))
        manifests.canaries.extend(found.canaries)
        manifests.templates.extend(found.templates)
        manifests.alert_providers.extend(found.alert_providers)
        manifests.objects.extend(found.objects)
    if problems:
        raise SpecError(problems)
    canary, _ = single_canary(manifests, canary_path)
    recording = load_recording(recording_path)
    return manifests, canary, recording


def single_canary(
    manifests: Manifests, canary_path: str | Path
) -> tuple[Canary, dict[tuple[str, str], MetricTemplate]]:
    """The one Canary of the ``--canary`` file and the MetricTemplates its metrics name, by
    (namespace, name); SpecError naming ``--canary`` or the metric's templateRef otherwise."""
    if len(manifests.canaries) != 1:
        raise SpecError(
            Problem(
                "--canary",
                f"expected exactly one Canary (flagger.app/v1beta1) in {canary_path}, "
                f"found {len(manifests.canaries)}",
            )
        )
    canary = manifests.canaries[0]
    return canary, metric_templates(manifests, canary)


def metric_templates(
    manifests: Manifests, canary: Canary, *, where: str = ""
) -> dict[tuple[str, str], MetricTemplate]:
    """The MetricTemplates the canary's metrics name, by (namespace, name). One that is not in
    the manifests is a SpecError naming the metric's templateRef, after ``where`` (a sweep names
    its setting there, as every setting is a different Canary)."""
    templates: dict[tuple[str, str], MetricTemplate] = {}
    for i, metric in enumerate(canary.spec.effective_analysis.metrics):
        ref = metric.template_ref
        if ref is None:
            continue
        namespace = ref.namespace or canary.metadata.namespace
        found = manifests.template(ref.name, namespace)
        if found is None:
            raise SpecError(
                Problem(
                    f"{where}spec.analysis.metrics[{i}].templateRef",
                    f"MetricTemplate {namespace}/{ref.name} is not in the --canary file or any "
                    "--template file",
                )
            )
        templates[(namespace, ref.name)] = found
    return templates


async def simulate(
    manifests: Manifests,
    canary: Canary,
    recording: Recording,
    *,
    mesh_provider: str = DEFAULT_MESH_PROVIDER,
    commands: Sequence[ScheduledCommand] = (),
) -> SimulationResult:
    """Replay the recording; see the module docstring for the set-up."""
    clock = VirtualClock()
    cluster = InMemoryCluster()
    metrics = RecordedMetricSource(recording, now=clock.now)
    webhooks = RecordedWebhooks(recording, now=clock.now)
    alerts: list[Alert] = []

    async def collect_alert(_: Canary, alert: Alert) -> None:
        alerts.append(alert)

    deps = EngineDeps(
        cluster=cluster,
        clock=clock,
        workload=TargetWorkload(cluster),
        router_for=lambda provider: router_for(provider, cluster),
        metrics=metrics,
        webhooks=webhooks,
        settings=Settings(mesh_provider=mesh_provider),
        on_alert=collect_alert,
        event_webhooks=False,
    )
    await _seed(cluster, manifests, canary)
    driver = CanaryDriver(deps, canary.metadata.namespace, canary.metadata.name)
    await _bootstrap(driver, canary)
    if canary.spec.suspend:
        # Time 0 finds the Canary Initialized (interfaces §2); a suspended one was suspended
        # after that, so it is seeded unsuspended and suspended again now.
        await cluster.patch(
            ObjectRef(CANARY, canary.metadata.namespace, canary.metadata.name),
            {"spec": {"suspend": True}},
        )
    await _apply_recorded_revision(cluster, canary)

    result = SimulationResult(
        canary=canary.ref, result="undecided", decided_at=None, canary_spec=canary
    )
    result.warnings.extend(_coverage_warnings(canary, recording))
    end = recording.last_time + LOOKBACK_SECONDS
    ticks = 0

    def finished(report: TickReport) -> bool:
        nonlocal ticks
        ticks += 1
        phase = report.status.phase if report.status else None
        if phase is Phase.SUCCEEDED:
            result.result, result.decided_at = "promoted", report.t
            return True
        if phase is Phase.FAILED:
            result.result, result.decided_at = "rolled_back", report.t
            return True
        result.result, result.decided_at = "undecided", None  # a --command retry reopens a run
        following = clock.now() + report.interval
        if following > end:
            return True  # the recording has ended
        if ticks >= MAX_TICKS:
            result.stopped_by = f"the {MAX_TICKS:,}-tick limit"
        elif following > MAX_VIRTUAL_SECONDS:
            result.stopped_by = f"the {MAX_VIRTUAL_SECONDS / 86_400:g}-day virtual-time limit"
        else:
            return False
        result.warnings.append(
            f"stopped undecided at t={report.t:g}s after {ticks:,} ticks: {result.stopped_by} "
            f"(simulate runs at most {MAX_TICKS:,} ticks or "
            f"{MAX_VIRTUAL_SECONDS / 86_400:g} days of virtual time); the recording runs to "
            f"t={recording.last_time:g}s"
        )
        return True

    if not commands:
        result.ticks = list(await clock.run(run_canary_loop(driver, clock, until=finished)))
        return result
    ticks_run, unsent = await clock.run(
        run_with_commands(driver, clock, cluster, commands, until=finished)
    )
    result.ticks = ticks_run
    result.warnings.extend(
        f"--command {c.at:g}:{c.label.replace(' --', '-')} was not sent: the simulation ended "
        f"at t={ticks_run[-1].t:g}s"
        for c in unsent
    )
    return result


async def _seed(cluster: InMemoryCluster, manifests: Manifests, canary: Canary) -> None:
    # Checked again for the callers that build Manifests themselves (sweep, report): a type
    # fault is bad input, never a traceback from deep in traffic.
    problems = object_problems(manifests.objects)
    if problems:
        raise SpecError(problems)
    ns = canary.metadata.namespace
    target = canary.spec.target_ref.name
    autoscaler = canary.spec.autoscaler_ref
    bodies: list[dict[str, Any]] = []
    has_target = has_autoscaler = False
    for obj in manifests.objects:
        try:
            kind = kind_of(obj)
        except KeyError:
            continue  # kinds the simulation does not model (e.g. Namespace) are ignored
        body = seeded(obj)  # a copy without null fields, as the API server stores it
        body.setdefault("metadata", {}).setdefault("namespace", ns)
        if kind == _target_kind(canary) and body["metadata"].get("name") == target:
            has_target = True
            _mark_revision(body, "previous")
        if (
            kind.kind == (autoscaler.kind if autoscaler is not None else None)
            and autoscaler is not None
            and body["metadata"].get("name") == autoscaler.name
        ):
            has_autoscaler = True
        bodies.append(body)
    if not has_target:
        bodies.append(_synthetic_target(canary))
    if autoscaler is not None and autoscaler.kind == HPA.kind and not has_autoscaler:
        bodies.append(_synthetic_autoscaler(canary, autoscaler.name))
    if autoscaler is not None and autoscaler.kind == "ScaledObject" and not has_autoscaler:
        bodies.append(_synthetic_scaled_object(canary, autoscaler.name))
    bodies.extend(
        model.model_dump(mode="json", by_alias=True, exclude_none=True)
        for model in (*manifests.templates, *manifests.alert_providers)
    )
    canary_body = canary.model_dump(mode="json", by_alias=True, exclude_none=True)
    canary_body["metadata"]["uid"] = f"sim-{ns}-{canary.metadata.name}"
    canary_body["spec"]["suspend"] = False  # suspended again after initialisation
    canary_body.pop("status", None)
    bodies.append(canary_body)
    cluster.seed(*bodies)


def _target_kind(canary: Canary) -> Kind:
    if canary.spec.target_ref.api_version.startswith("serving.knative.dev/"):
        return KNATIVE_SERVICE
    if canary.spec.target_ref.kind == "Service":
        return SERVICE
    return DAEMONSET if canary.spec.target_ref.kind == "DaemonSet" else DEPLOYMENT


def _synthetic_target(canary: Canary) -> dict[str, Any]:
    """A Deployment (or DaemonSet) like the target, for Canary files that do not include it."""
    name = canary.spec.target_ref.name
    port = canary.spec.service.port if canary.spec.service else 8080
    target_port = canary.spec.service.effective_target_port if canary.spec.service else port
    container_port = target_port if isinstance(target_port, int) else port
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": canary.metadata.namespace, "labels": {"app": name}},
        "spec": {
            "replicas": SYNTHETIC_REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"{name}:recorded",
                            "ports": [{"name": "http", "containerPort": container_port}],
                        }
                    ]
                },
            },
        },
    }
    if canary.spec.target_ref.kind == "DaemonSet":  # one pod per node: no replicas
        body["kind"] = "DaemonSet"
        del body["spec"]["replicas"]
    if _target_kind(canary) == SERVICE:  # a Service whose backends live elsewhere
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": canary.metadata.namespace},
            "spec": {
                "selector": {"app": name},
                "ports": [{"name": "http", "port": port, "targetPort": container_port}],
            },
        }
    if _target_kind(canary) == KNATIVE_SERVICE:  # Knative runs the pods: a template only
        body["apiVersion"] = KNATIVE_SERVICE.api_version
        body["kind"] = KNATIVE_SERVICE.kind
        body["spec"] = {"template": body["spec"]["template"]}
    _mark_revision(body, "previous")
    return body


def _synthetic_autoscaler(canary: Canary, name: str) -> dict[str, Any]:
    """The HPA ``autoscalerRef`` names, when the file has none: it keeps the synthesised target's
    replicas as its minimum (so scaling from zero restores them), and the engine copies it to
    ``<name>-primary`` as in a cluster. Simulate never scales on load, so its bounds are all the
    simulation reads."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": HPA.kind,
        "metadata": {"name": name, "namespace": canary.metadata.namespace},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": canary.spec.target_ref.name,
            },
            "minReplicas": SYNTHETIC_REPLICAS,
            "maxReplicas": 2 * SYNTHETIC_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def _synthetic_scaled_object(canary: Canary, name: str) -> dict[str, Any]:
    """The KEDA ScaledObject ``autoscalerRef`` names, when the file has none (as the HPA above:
    its minimum keeps the synthesised target's replicas)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": canary.metadata.namespace},
        "spec": {
            "scaleTargetRef": {"name": canary.spec.target_ref.name},
            "minReplicaCount": SYNTHETIC_REPLICAS,
            "maxReplicaCount": 2 * SYNTHETIC_REPLICAS,
            "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}}],
        },
    }


def _mark_revision(body: dict[str, Any], revision: str) -> None:
    if body.get("kind") == "Service" and body.get("apiVersion") == "v1":
        # A Service target's revision is the hash of its spec (it has no pod template): the
        # marker goes into its selector, which only the simulated world reads.
        spec = body.setdefault("spec", {})
        spec.setdefault("selector", {})[REVISION_ANNOTATION] = revision
        return
    template = body.setdefault("spec", {}).setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("annotations", {})[REVISION_ANNOTATION] = (
        revision
    )


async def _bootstrap(driver: CanaryDriver, canary: Canary) -> None:
    errors: list[str] = []
    for _ in range(_BOOTSTRAP_TICKS):
        report = await driver.tick()
        if report.error:
            errors.append(report.error)
        if report.status is not None and report.status.phase is Phase.INITIALIZED:
            return
        if report.status is not None and report.status.phase is Phase.FAILED:
            break
    reason = errors[-1] if errors else "the primary never became ready"
    raise SpecError(Problem(canary.ref, f"the canary could not be initialised: {reason}"))


async def _apply_recorded_revision(cluster: InMemoryCluster, canary: Canary) -> None:
    kind = _target_kind(canary)
    ref = ObjectRef(kind, canary.metadata.namespace, canary.spec.target_ref.name)
    if kind is SERVICE:
        await cluster.patch(ref, {"spec": {"selector": {REVISION_ANNOTATION: "recorded"}}})
        return
    await cluster.patch(
        ref,
        {"spec": {"template": {"metadata": {"annotations": {REVISION_ANNOTATION: "recorded"}}}}},
    )


def _no_data_outcome(metric: Metric, counts: Mapping[str, str], *, primary_recorded: bool) -> str:
    """What a check of a metric without canary samples amounts to."""
    silent = metric.judge is not None and metric.on_no_data is None and not primary_recorded
    if silent and metric.threshold_range is None:
        # Neither version answers: the judge holds the weight (inconclusive), then
        # inconclusiveLimit counts such ticks as failed.
        return "inconclusive, the weight held until inconclusiveLimit"
    # The primary answers (a canary outage), or a thresholdRange sees no value: no data.
    return counts[metric.no_data_policy]


def _coverage_warnings(canary: Canary, recording: Recording) -> list[str]:
    """Metrics the Canary checks that the recording never mentions: every check will lack data
    (which counts as the metric's ``onNoData`` says: Flagger's failed check by default)."""
    recorded = recording.metrics("canary")
    primary = recording.metrics("primary")
    counts = {
        "fail": "a failed check",
        "inconclusive": "inconclusive (onNoData)",
        "pass": "a pass (onNoData)",
    }
    metrics = canary.spec.effective_analysis.metrics
    warnings = [
        f"the recording has no canary samples for metric {m.name!r}: every check of it will "
        f"have no data ({_no_data_outcome(m, counts, primary_recorded=m.name in primary)})"
        for m in metrics
        if m.name not in recorded
    ]
    analysis = canary.spec.effective_analysis
    interval = analysis.interval_seconds
    firsts = [
        times[0]
        for m in metrics
        if m.name in recorded
        for times in [recording.samples("canary", m.name, 0.0, math.inf)[0]]
        if times
    ]
    # The run's checks would all be over before the first canary sample arrives: time 0 is
    # likely not when the revision was applied (a file of RFC 3339 times sorted oldest first
    # makes its first history row time 0).
    planned = interval * (analysis.planned_ticks + 3)
    if firsts and min(firsts) > planned:
        warnings.append(
            f"the recording's first canary sample is {format_go_duration(min(firsts))} after "
            "time 0, later than this analysis would run: time 0 is the moment the new revision "
            "was applied (with RFC 3339 times, the file's first row), so every check before it "
            "will have no data"
        )
    for m in metrics:
        if m.judge is None:
            continue
        # As the judge will read them: the points of its grid in the window before time 0 that
        # hold a value (a row a second is one sample a minute with a 1m step; a row every 5
        # minutes a value at every minute, through the lookback).
        known = history_samples(
            recording,
            m.name,
            window=m.judge.window_seconds,
            step=m.judge.step_seconds(interval),
        )
        if known < m.judge.min_history:
            fallback = (
                "its thresholdRange decides"
                if m.threshold_range is not None
                else "the weight holds until inconclusiveLimit counts them as failed"
            )
            warnings.append(
                f"the recording has {known} primary sample{'' if known == 1 else 's'} up to "
                f"time 0 for judged metric {m.name!r}, {m.judge.min_history} needed "
                f"(judge.minHistory): every judged check will be inconclusive ({fallback})"
            )
    return warnings
