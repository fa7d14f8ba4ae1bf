"""Provider ``istio``: VirtualService and DestinationRules (``traffic._istio``)."""

from __future__ import annotations

from collections.abc import Iterable

from config import Canary, Capabilities, Problem, RouterRules, parse_duration
from traffic._istio import IstioRouter
from traffic._objects import service_timeouts
from traffic._registry import RouterModule
from traffic.cluster import DESTINATION_RULE, VIRTUAL_SERVICE


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    analysis = canary.spec.effective_analysis
    service = canary.spec.service
    tcp = service is not None and (service.app_protocol or "").lower() == "tcp"
    if tcp and analysis.match and not analysis.effective_iterations:
        # Flagger's SetRoutes writes one L4 route for a TCP service and ignores match: every
        # request, matching or not, would be stepped to the canary.
        yield Problem(
            f"{analysis_key}.match",
            "a TCP service (service.appProtocol: tcp) is routed by port only: the istio router "
            "cannot split only the matching requests (Flagger ignores match there and steps all "
            "traffic). Remove match, or serve the canary over HTTP",
        )
    yield from _duration_problems(canary)


def _duration_problems(canary: Canary) -> Iterable[Problem]:
    """Istio's CRDs refuse a timeout that is not a duration of at least 1ms (a CEL rule), on
    every write of the VirtualService; Flagger passes the strings on as they are."""
    fields = service_timeouts(canary)
    service = canary.spec.service
    max_age = (service.cors_policy or {}).get("maxAge") if service else None
    if max_age:
        fields["spec.service.corsPolicy.maxAge"] = str(max_age)
    for field, value in fields.items():
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            yield Problem(field, f"Istio {exc}")
            continue
        if seconds < 0.001:
            yield Problem(field, f"Istio needs a duration of at least 1ms, got {value!r}")


ROUTER = RouterModule(
    names=("istio",),
    rules=RouterRules(
        label="istio",
        capabilities=Capabilities(
            ab_testing=True, weighted_match=True, mirroring=True, session_affinity=True
        ),
        check=_check,
    ),
    build=lambda cluster, _provider, options: IstioRouter(
        cluster, selector_labels=options.selector_labels
    ),
    kinds=(VIRTUAL_SERVICE, DESTINATION_RULE),
)
