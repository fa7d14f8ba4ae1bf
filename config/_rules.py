"""The rules of a Canary beyond its field schema: Flagger's CRD ``oneOf`` and what it enforces
at run time, the routers' own requirements, and the deliberate changes of flagger-behaviour §12
(Q4, Q11, Q16). ``parse_canary`` runs them after the schema has passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from config._durations import format_go_duration
from config._routers import RouterRules, router_rules, routers_that
from config._spec import Canary, Metric, too_many_window_samples
from config._support import is_knative, not_built_problems
from config._urls import url_problem
from config.errors import Problem, short


def _weighted_match_problems(
    canary: Canary, rules: RouterRules | None, a_key: str
) -> Iterable[Problem]:
    """``analysis.match`` with ``stepWeight``/``stepWeights``: Flagger's canary strategy, where
    the routers declaring ``weighted_match`` step the weights on the matching requests only (the
    rest stays on the primary; Gloo's RouteTable routes only the matching ones, as in A/B
    testing). Refused where that cannot happen, and with what would silently not work beside
    it."""
    analysis = canary.spec.effective_analysis
    can = ", ".join(routers_that(lambda c: c.weighted_match))
    if rules is None:
        pass  # no provider written nor known here (validate): the controller checks its default
    elif not rules.capabilities.ab_testing:
        yield Problem(
            f"{a_key}.match",
            f"the {rules.label} router cannot route by header or cookie, so it cannot split only "
            "the matching requests by weight (Flagger ignores match there). Remove match to step "
            f"all traffic, or use one of {can}",
        )
    elif not rules.capabilities.weighted_match:
        yield Problem(
            f"{a_key}.match",
            f"the {rules.label} router sends the matching requests to the canary all or "
            "nothing, so stepWeight/stepWeights cannot split them (Flagger ignores the weights: "
            "every matching request goes to the canary at the first step, and the canary is "
            "promoted after the next analysis). Set iterations for A/B testing, remove match to "
            f"step all traffic by weight, or use one of {can}",
        )
    if analysis.mirror:
        yield Problem(
            f"{a_key}.mirror",
            "cannot be combined with match and stepWeight/stepWeights: the routes that split "
            "the matching requests carry no mirror, so the analysis would never leave weight 0 "
            "(Flagger stays there). Remove mirror, or match",
        )
    if analysis.session_affinity is not None and (
        rules is None or rules.capabilities.session_affinity
    ):
        yield Problem(
            f"{a_key}.sessionAffinity",
            "cannot be combined with match and stepWeight/stepWeights: the routes that split "
            "the matching requests replace the sticky ones (Flagger's Istio router drops them, "
            "its Gateway API router then sends every matching request to the canary). Remove "
            "sessionAffinity, or match",
        )


#: Kubernetes' longest Service name (a DNS-1035 label), and the longest suffix we add to one.
_SERVICE_NAME_MAX = 63
_LONGEST_SUFFIX = "-primary"


def _service_name_problems(canary: Canary) -> Iterable[Problem]:
    """The Services the Canary needs (``<name>``, ``<name>-canary``, ``<name>-primary``) must fit
    a Service name: the API server refuses a longer one on every tick (422 Invalid), as it does
    Flagger's, which takes such a Canary and fails at run time. (Only the length is checked: a
    name like ``secret.app``, a legal Deployment name, is left to the API server, as Flagger
    leaves it.)"""
    spec = canary.spec
    name = spec.service_name
    longest = f"{name}{_LONGEST_SUFFIX}"
    if len(longest) > _SERVICE_NAME_MAX:
        field = "spec.service.name" if spec.service and spec.service.name else "spec.targetRef.name"
        most = _SERVICE_NAME_MAX - len(_LONGEST_SUFFIX)
        yield Problem(
            field,
            f"the Service {longest} that canary-engine creates would be {len(longest)} characters, "
            f"and a Kubernetes Service name has at most {_SERVICE_NAME_MAX}; set "
            f"spec.service.name to a name of at most {most} characters, got {len(name)}",
        )


def _url_problem(url: str, example: str) -> str | None:
    """Why ``url`` cannot be requested (Flagger takes any text and fails each request at run
    time; a port out of range crashed the request inside the HTTP library), or None."""
    reason = url_problem(url, schemes=("http", "https"))
    if reason is None:
        return None
    # without user info and query, which may hold a password or a token
    shown = _USER_INFO.sub(r"\1", url).partition("?")[0]
    return f"must be an http(s) URL such as {example}, got {short(shown)}: {reason}"


_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def _url_problems(canary: Canary, a_key: str) -> Iterable[Problem]:
    spec = canary.spec
    if spec.metrics_server and (
        problem := _url_problem(spec.metrics_server, "http://prometheus.istio-system:9090")
    ):
        yield Problem("spec.metricsServer", problem)
    for i, hook in enumerate(spec.effective_analysis.webhooks):
        if problem := _url_problem(hook.url, "http://flagger-loadtester.test/"):
            yield Problem(f"{a_key}.webhooks[{i}].url", problem)


def canary_problems(canary: Canary, default_provider: str | None) -> Iterable[Problem]:
    """Rules beyond the field schema: Flagger's CRD oneOf and our §12 decisions."""
    spec = canary.spec
    a_key = "spec.analysis" if spec.analysis is not None else "spec.canaryAnalysis"
    analysis = spec.effective_analysis
    yield from _url_problems(canary, a_key)
    chosen = [
        name
        for name, value in (
            ("iterations", analysis.iterations),
            ("stepWeight", analysis.step_weight),
            ("stepWeights", analysis.step_weights),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        got = " and ".join(chosen) if chosen else "none"
        yield Problem(
            a_key,
            "set exactly one of iterations (blue/green, A/B), stepWeight or stepWeights; "
            f"got {got}",
        )
    if spec.service is None and not is_knative(spec):  # a Knative Canary has none in Flagger
        yield Problem(
            "spec.service", "required: the service port the canary serves on (spec.service.port)"
        )
    elif spec.service is not None:
        yield from _service_name_problems(canary)
    yield from not_built_problems(spec)
    # Without spec.provider the controller's --mesh-provider routes the Canary: its router's rules
    # apply when the caller knows it (the controller, simulate, sweep; validate does not).
    routed_by = spec.provider or default_provider
    rules = router_rules(routed_by) if routed_by else None
    # match without iterations: the canary strategy, its weights split only the matching requests
    weighted_match = bool(analysis.match) and not analysis.effective_iterations
    stepped = analysis.step_weight is not None or analysis.step_weights is not None
    if rules is not None:
        if analysis.match and not rules.capabilities.ab_testing and not weighted_match:
            yield Problem(
                f"{a_key}.match",
                f"A/B testing needs a router that matches headers or cookies; the "
                f"{rules.label} router cannot route by header or cookie. Remove match, or use "
                f"one of {', '.join(routers_that(lambda c: c.ab_testing))}",
            )
        if analysis.session_affinity is not None and not rules.capabilities.session_affinity:
            yield Problem(
                f"{a_key}.sessionAffinity",
                f"the {rules.label} router cannot keep users on the canary with a cookie (Flagger "
                "ignores it there). Remove sessionAffinity, or use one of "
                f"{', '.join(routers_that(lambda c: c.session_affinity))}",
            )
        # a router's own check reads the provider it serves (appmesh vs appmesh:v1beta2), so a
        # Canary routed by the default is checked as if it named it
        routed = (
            canary
            if spec.provider
            else canary.model_copy(update={"spec": spec.model_copy(update={"provider": routed_by})})
        )
        yield from rules.check(routed, a_key)
    if weighted_match and not stepped:
        yield Problem(f"{a_key}.iterations", "A/B testing (match) needs iterations > 0")
    elif weighted_match:
        yield from _weighted_match_problems(canary, rules, a_key)
    sa = analysis.session_affinity
    if sa is not None and sa.primary_cookie_name and sa.primary_cookie_name == sa.cookie_name:
        yield Problem(f"{a_key}.sessionAffinity.primaryCookieName", "must differ from cookieName")
    names = [metric.name for metric in analysis.metrics]
    for i, metric in enumerate(analysis.metrics):
        where = f"{a_key}.metrics[{i}]"
        yield from _default_step_problems(metric, analysis.interval_seconds, where)
        # Flagger's CRD lets two entries share a name, each checked on its own; a judge finds its
        # series (live, and a recording's rows in simulate) and its verdict by the name, so two
        # namesakes would read each other's samples and one would never be judged.
        others = [j for j, name in enumerate(names) if name == metric.name and j != i]
        if metric.judge is not None and others:
            yield Problem(
                f"{where}.name",
                f"{metric.name!r} also names {a_key}.metrics[{others[0]}]; a metric with judge "
                "needs a name of its own (its series and its verdict are found by name): "
                "rename one of them",
            )
        if (
            metric.name == "request-duration"
            and metric.threshold_range is None
            and metric.threshold is None
            and metric.judge is None
        ):
            yield Problem(
                where,
                "request-duration needs thresholdRange.max (milliseconds) or threshold; "
                "without either every non-zero latency would fail",
            )
        if not metric.is_builtin and metric.template_ref is None and not metric.query:
            yield Problem(
                where,
                f"metric {metric.name!r} is not builtin (request-success-rate, request-duration) "
                "and has neither templateRef nor query, so there is nothing to check (Flagger "
                "counts it as a failed check on every tick, 'no usable metrics template and query "
                "were configured', until it rolls back). Add a templateRef or query, use a "
                "builtin name, or remove the metric",
            )


def _default_step_problems(metric: Metric, interval: float, where: str) -> Iterable[Problem]:
    """``judge.step`` left to its default, the analysis interval, held to the limits the Judge
    model holds a written step to (it cannot see the interval)."""
    judge = metric.judge
    if judge is None or judge.step is not None:
        return
    window = judge.window_seconds
    shown = format_go_duration(interval)
    if interval > window:
        yield Problem(
            f"{where}.judge.window",
            f"{judge.window} is shorter than the analysis interval ({shown}), judge.step's "
            "default: the window would hold at most one primary sample, never minHistory; set "
            f"judge.window to many intervals (the default is 24h)",
        )
        return
    too_many = too_many_window_samples(window, interval)
    if too_many:
        yield Problem(
            f"{where}.judge.window",
            f"{judge.window} at the analysis interval ({shown}, judge.step's default) is "
            + too_many,
        )


def cross_namespace_problems(canary: Canary) -> list[Problem]:
    """Flagger's ``-no-cross-namespace-refs``: the references that name another namespace than
    the Canary's (an empty namespace is the Canary's own). With the flag set, Flagger's
    ``verifyCanary`` refuses such a Canary and never schedules it."""
    spec, own = canary.spec, canary.metadata.namespace
    a_key = "spec.analysis" if spec.analysis is not None else "spec.canaryAnalysis"
    blocked = "cross-namespace references are blocked (--no-cross-namespace-refs)"

    def elsewhere(namespace: str | None) -> bool:
        return bool(namespace) and namespace != own

    problems: list[Problem] = []
    upstream = spec.upstream_ref
    if upstream is not None and elsewhere(upstream.namespace):
        problems.append(
            Problem(
                "spec.upstreamRef.namespace",
                f"can't access gloo upstream {upstream.name}.{upstream.namespace}: {blocked}",
            )
        )
    analysis = spec.effective_analysis
    for i, metric in enumerate(analysis.metrics):
        ref = metric.template_ref
        if ref is not None and elsewhere(ref.namespace):
            problems.append(
                Problem(
                    f"{a_key}.metrics[{i}].templateRef.namespace",
                    f"can't access metric template {ref.name}.{ref.namespace}: {blocked}",
                )
            )
    for i, alert in enumerate(analysis.alerts):
        provider = alert.provider_ref
        if elsewhere(provider.namespace):
            problems.append(
                Problem(
                    f"{a_key}.alerts[{i}].providerRef.namespace",
                    f"can't access alert provider {provider.name}.{provider.namespace}: {blocked}",
                )
            )
    return problems
