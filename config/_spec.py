"""Typed models of Flagger's ``flagger.app/v1beta1`` Canary, MetricTemplate and AlertProvider.

Field names on the wire are Flagger's camelCase names (pydantic aliases), so users' manifests load
unchanged; Python attributes are snake_case. Models are frozen and reject unknown fields, so a typo
such as ``stepweight`` is reported instead of silently ignored. Derived values that Flagger computes
with getters (interval, threshold, max weight, strategy) are properties here, with its defaults.

Pure data: no I/O. Imports only pydantic and ``config`` siblings.
"""

from __future__ import annotations

import itertools
import math
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from config._durations import format_go_duration, parse_duration
from config.errors import short

API_VERSION = "flagger.app/v1beta1"

#: Providers Flagger accepts in ``spec.provider`` (CRD enum).
FLAGGER_PROVIDERS = (
    "apisix",
    "appmesh",
    "appmesh:v1beta2",
    "contour",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "gloo",
    "istio",
    "knative",
    "kubernetes",
    "kuma",
    "linkerd",
    "nginx",
    "osm",
    "skipper",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "traefik",
)

#: The router of a Canary without ``spec.provider`` when the controller is given no
#: ``--mesh-provider``: plain Kubernetes Services (Flagger's own flag defaults to istio).
DEFAULT_MESH_PROVIDER = "kubernetes"

#: Builtin metric names checked by name, as Flagger does.
BUILTIN_METRICS = ("request-success-rate", "request-duration")

#: Minimum analysis interval Flagger enforces.
MIN_INTERVAL_SECONDS = 10.0
DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_METRIC_INTERVAL_SECONDS = 60.0
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
#: Inconclusive ticks tolerated per run before each further one counts as a failed check.
DEFAULT_INCONCLUSIVE_LIMIT = 5
TOTAL_WEIGHT = 100


class Strategy(StrEnum):
    """Deployment strategy derived from the analysis, as Flagger's ``DeploymentStrategy()``."""

    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    AB_TESTING = "ab-testing"


class HookType(StrEnum):
    """Webhook types; an empty ``type`` means ``rollout``."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


def _range_error(low: float, high: float | None, value: float) -> PydanticCustomError:
    bound = f"{low:g}..{high:g}" if high is not None else f">= {low:g}"
    return PydanticCustomError(
        "range", "must be {bound}, got {value}", {"bound": bound, "value": value}
    )


def _check_duration(value: str | None) -> str | None:
    if value is None or value == "":
        return value
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None
    return value


def _crd_form(seconds: float) -> str:
    """``seconds`` in a form the CRD pattern admits: whole minutes, seconds or milliseconds."""
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    if seconds == int(seconds):
        return f"{seconds:.0f}s"
    return f"{round(seconds * 1000)}ms"


#: Flagger's CRD pattern for ``analysis.interval``, ``metrics[].interval`` and
#: ``webhooks[].timeout`` (unanchored at the end, as the API server applies it): ``kubectl apply``
#: refuses ``1h`` or ``1.5m`` there, so validate must too, or CI passes what the cluster refuses.
_CRD_DURATION = re.compile(r"[0-9]+(m|s)")


def _check_metric_interval(value: str | None) -> str | None:
    """A metric's ``interval``: as ``_check_crd_duration``, and also a text the CRD pattern admits
    that is no Go duration (``1min``: the pattern is unanchored at the end). Flagger inserts it
    as written into ``{{ interval }}`` (Graphite reads ``1min``; its docs show it); its length is
    then the duration the pattern matched (``Metric.interval_seconds``)."""
    if value and _CRD_DURATION.match(value):
        try:
            parse_duration(value)
        except ValueError:
            return value
    return _check_crd_duration(value)


def _check_crd_duration(value: str | None) -> str | None:
    if value is None:
        return value
    if value == "":  # the pattern refuses it too: absent is what means "the default"
        raise PydanticCustomError(
            "duration",
            "must not be empty: leave the field out for its default (Flagger's CRD "
            "pattern ^[0-9]+(m|s) refuses an empty string)",
        )
    _check_duration(value)  # Go's grammar first: its message names the units
    if _CRD_DURATION.match(value):
        return value
    hint = f"; write {_crd_form(parse_duration(value))!r}"
    raise PydanticCustomError(
        "duration",
        "must start with a whole number of minutes or seconds, as Flagger's CRD requires "
        "(pattern ^[0-9]+(m|s): 30s, 1m, 1m30s, 500ms), got {value}{hint}",
        {"value": repr(value), "hint": hint},
    )


#: Istio's StringMatch: exactly one of these, a string (what every router reads a match with).
_STRING_MATCH_KEYS = ("exact", "prefix", "suffix", "regex")
#: HTTPMatchRequest fields that hold one StringMatch, and those that map names to one.
_STRING_MATCH_FIELDS = ("uri", "scheme", "method", "authority")
_STRING_MATCH_MAPS = ("headers", "queryParams")


def _string_match_problem(value: Any) -> str | None:
    if value == {}:  # Istio: the name alone matches the header's presence
        return None
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in _STRING_MATCH_KEYS
        and isinstance(next(iter(value.values())), str)
    ):
        return None
    keys = ", ".join(_STRING_MATCH_KEYS)
    return f"must be a mapping with one of {keys} (a string), got {short(value)}"


def _check_matches(matches: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The typed parts of Istio HTTPMatchRequests (Flagger's CRD types them; the routers read
    them): a header written as a plain string, ``{x-canary: insider}``, is refused with the fix
    rather than crashing a router at its first tick."""
    for index, match in enumerate(matches or ()):
        for name in _STRING_MATCH_FIELDS:
            if name in match and (problem := _string_match_problem(match[name])):
                raise PydanticCustomError(
                    "match",
                    "item {index}: {field} {problem}",
                    {"index": index, "field": name, "problem": problem},
                )
        for name in _STRING_MATCH_MAPS:
            entries = match.get(name)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise PydanticCustomError(
                    "match",
                    "item {index}: {field} must be a mapping of names to matches, got {value}",
                    {"index": index, "field": name, "value": short(entries)},
                )
            for key, value in entries.items():
                if problem := _string_match_problem(value):
                    raise PydanticCustomError(
                        "match",
                        "item {index}: {field}.{key} {problem} (e.g. {example})",
                        {
                            "index": index,
                            "field": name,
                            "key": key,
                            "problem": problem,
                            "example": "{exact: "
                            + (short(value) if isinstance(value, str) else "...")
                            + "}",
                        },
                    )
        labels = match.get("sourceLabels")
        if labels is not None and (
            not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
        ):
            raise PydanticCustomError(
                "match",
                "item {index}: sourceLabels must be a mapping of label names to strings, "
                "got {value}",
                {"index": index, "value": short(labels)},
            )
    return matches


class _Model(BaseModel):
    # strict: YAML's `skipAnalysis: "yes"` or `port: "9898"` is refused as the API server refuses
    # it against the CRD, never coerced (lax mode read "yes" as true and skipped the analysis).
    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
    )


class _Open(BaseModel):
    """Objects whose shape belongs to Kubernetes or a mesh (metadata): kept as given."""

    model_config = ConfigDict(
        strict=True, frozen=True, extra="allow", populate_by_name=True, alias_generator=to_camel
    )


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------


class TargetRef(_Model):
    api_version: str = "apps/v1"
    kind: Literal["Deployment", "DaemonSet", "Service"]
    name: str = Field(min_length=1)


class PrimaryScalerReplicas(_Model):
    min_replicas: int | None = Field(default=None, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)


#: Autoscalers a newer Flagger drives that canary-engine does not (config._support refuses them
#: saying so): KEDA's HTTP add-on.
NOT_BUILT_AUTOSCALERS = ("HTTPScaledObject",)


class AutoscalerRef(_Model):
    api_version: str = "autoscaling/v2"
    kind: Literal["HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"]
    name: str = Field(min_length=1)
    primary_scaler_queries: dict[str, str] | None = None
    primary_scaler_replicas: PrimaryScalerReplicas | None = None
    #: KEDA HTTP add-on's (HTTPScaledObject): read, and refused with the kind as not built.
    primary_scaling_set: dict[str, Any] | None = None


class IngressRef(_Model):
    api_version: str = "networking.k8s.io/v1"
    kind: Literal["Ingress"] = "Ingress"
    name: str = Field(min_length=1)


class RouteRef(_Model):
    api_version: str = ""
    kind: Literal["ApisixRoute"] = "ApisixRoute"
    name: str = Field(min_length=1)


class UpstreamRef(_Model):
    api_version: str = ""
    kind: Literal["Upstream"] = "Upstream"
    name: str = Field(min_length=1)
    namespace: str | None = None


class LocalRef(_Model):
    name: str = Field(min_length=1)
    namespace: str | None = None


class SecretRef(_Model):
    name: str = Field(min_length=1)


# ---------------------------------------------------------------------------------------------
# spec.service
# ---------------------------------------------------------------------------------------------


class CustomMetadata(_Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(_Model):
    labels: list[str] | None = None
    annotations: list[str] | None = None


class ServiceSpec(_Model):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    port_name: str | None = None
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: Literal["PreferClose", "PreferSameZone", "PreferSameNode"] | None = None
    port_discovery: bool = False
    headless: bool = False
    timeout: str | None = None
    backend_timeout: str | None = None
    gateways: list[str] | None = None
    gateway_refs: list[dict[str, Any]] | None = Field(default=None, max_length=32)
    hosts: list[str] | None = None
    delegation: bool = False
    traffic_policy: dict[str, Any] | None = None
    match: list[dict[str, Any]] | None = None
    rewrite: dict[str, Any] | None = None
    retries: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    mirror: list[dict[str, Any]] | None = None
    cors_policy: dict[str, Any] | None = None
    mesh_name: str | None = None
    backends: list[str] | None = None
    apex: CustomMetadata | None = None
    primary: CustomMetadata | None = None
    canary: CustomMetadata | None = None
    unmanaged_metadata: UnmanagedMetadata | None = None

    @field_validator("match")
    @classmethod
    def _matches(cls, matches: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return _check_matches(matches)

    @field_validator("retries")
    @classmethod
    def _retries(cls, retries: dict[str, Any] | None) -> dict[str, Any] | None:
        # typed in Flagger's CRD; the contour and App Mesh routers do arithmetic with attempts
        attempts = (retries or {}).get("attempts")
        if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)):
            raise PydanticCustomError(
                "retries",
                "attempts must be a whole number, got {value}",
                {"value": short(attempts)},
            )
        for name in ("perTryTimeout", "retryOn"):
            value = (retries or {}).get(name)
            if value is not None and not isinstance(value, str):
                raise PydanticCustomError(
                    "retries",
                    "{name} must be a string, got {value}",
                    {"name": name, "value": short(value)},
                )
        return retries

    @field_validator("gateway_refs")
    @classmethod
    def _gateway_names(cls, refs: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        # The CRD requires a name in each parentRef; without one the HTTPRoute is refused at
        # run time, so say it here (the rest of a parentRef is Gateway API's to check).
        for i, ref in enumerate(refs or ()):
            name = ref.get("name")
            if not isinstance(name, str) or not name:
                raise PydanticCustomError(
                    "gateway_ref",
                    "item {index} needs a name (the Gateway's), got {ref}",
                    {"index": i, "ref": short(ref)},
                )
        return refs

    @property
    def effective_port_name(self) -> str:
        return self.port_name or "http"

    @property
    def effective_target_port(self) -> int | str:
        if self.target_port is None or self.target_port in ("", 0):
            return self.port
        return self.target_port


# ---------------------------------------------------------------------------------------------
# spec.analysis
# ---------------------------------------------------------------------------------------------


def _not_bool(value: Any) -> Any:
    """YAML ``true`` is not a bound (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be a number, got {value}", {"value": value})
    return value


def _finite_bound(value: float | None) -> float | None:
    """A metric bound must be a number: NaN would never fail anything (every comparison with NaN
    is false, so a NaN ``min`` promotes at 0 % success) and ±Inf (``.inf``, ``1e400``) is no
    bound at all — leave the bound out instead."""
    if value is not None and (value != value or value in (float("inf"), float("-inf"))):
        raise PydanticCustomError(
            "finite", "must be a finite number, got {value}", {"value": value}
        )
    return value


class ThresholdRange(_Model):
    min: float | None = None
    max: float | None = None

    _number = field_validator("min", "max", mode="before")(_not_bool)
    _finite = field_validator("min", "max")(_finite_bound)

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "range_order",
                "min ({lo}) must not be greater than max ({hi})",
                {"lo": self.min, "hi": self.max},
            )
        return self


#: Defaults of the comparative judge's optional keys (README "The comparative judge").
JUDGE_DEFAULT_CONFIDENCE = 0.99
JUDGE_DEFAULT_WINDOW = "24h"
JUDGE_DEFAULT_MIN_HISTORY = 20
JUDGE_DEFAULT_TOLERANCE = 0.1
#: The most samples ``judge.window`` may hold at ``judge.step`` (per series: about 1.6 MB kept per
#: judged series and 10 range queries of 11,000 points to read it once; a day at 1s is 86,400).
JUDGE_MAX_WINDOW_SAMPLES = 100_000


def too_many_window_samples(window: float, step: float) -> str | None:
    """How a judge window of ``window`` seconds at ``step`` holds more samples per series than
    JUDGE_MAX_WINDOW_SAMPLES, and the step or window that would fit; None when it does not."""
    samples = math.ceil(round(window / step, 6))
    if samples <= JUDGE_MAX_WINDOW_SAMPLES:
        return None
    needed = format_go_duration(math.ceil(window / JUDGE_MAX_WINDOW_SAMPLES * 1000) / 1000)
    longest = format_go_duration(step * JUDGE_MAX_WINDOW_SAMPLES)
    return (
        f"{samples:,} samples per series, more than the {JUDGE_MAX_WINDOW_SAMPLES:,} a judge may "
        f"read: set judge.step to at least {needed} or judge.window to at most {longest}"
    )


class Judge(_Model):
    """canary-engine's extension of a metric (interfaces §2): judge the canary against a baseline.

    ``baseline: primary`` holds each canary sample to the envelope of the primary's samples in the
    ``window`` before the analysis started (the primary's concurrent samples are the comparison
    guard);
    ``harmful`` is the direction in which a change is a regression. See docs/judge.md.
    """

    baseline: Literal["primary"]
    harmful: Literal["increase", "decrease", "both"]
    #: The probability that a canary no different from the primary passes every look of the
    #: analysis (when the window holds enough samples; the explanation says when it does not).
    confidence: float = Field(default=JUDGE_DEFAULT_CONFIDENCE, gt=0.5, lt=1.0, allow_inf_nan=False)
    #: How far back (from the tick) the primary's samples reach for the envelope.
    window: str = JUDGE_DEFAULT_WINDOW
    #: Primary samples the window must hold before the judge passes or fails (else inconclusive).
    min_history: int = Field(default=JUDGE_DEFAULT_MIN_HISTORY, ge=1, le=1_000_000)
    #: How far outside the envelope, as a fraction of its bound, a sample must be to count.
    tolerance: float = Field(default=JUDGE_DEFAULT_TOLERANCE, ge=0.0, le=100.0)
    #: Spacing of the samples asked for (default: the analysis interval): at least 1ms, at most
    #: ``window``, and ``window`` may hold at most JUDGE_MAX_WINDOW_SAMPLES of them.
    step: str | None = None

    _dur = field_validator("window", "step")(_check_duration)

    @field_validator("window", "step")
    @classmethod
    def _positive(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise PydanticCustomError(
                "duration", "must be a positive duration such as 1h, got {value}", {"value": value}
            )
        return value

    @field_validator("step")
    @classmethod
    def _step_fits_window(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A step Prometheus can answer, with which the window can reach ``minHistory`` and that
        does not hold more samples than the controller keeps (``window`` is validated first)."""
        if value is None:
            return value
        step = parse_duration(value)
        if step < 0.001:
            raise PydanticCustomError(
                "judge_step",
                "must be at least 1ms (Prometheus keeps times in milliseconds), got {value}: "
                "set judge.step to 1ms or more",
                {"value": value},
            )
        window_text = info.data.get("window")
        if not isinstance(window_text, str):
            return value  # the window has its own error
        window = parse_duration(window_text)
        if step > window:
            raise PydanticCustomError(
                "judge_step",
                "must not be longer than judge.window ({window}), got {value}: the window would "
                "hold at most one primary sample, never minHistory; set judge.step to at most "
                "{window} or judge.window to at least {value}",
                {"value": value, "window": window_text},
            )
        too_many = too_many_window_samples(window, step)
        if too_many:
            raise PydanticCustomError(
                "judge_step",
                "judge.window {window} at judge.step {value} is {too_many}",
                {"value": value, "window": window_text, "too_many": too_many},
            )
        return value

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)

    def step_seconds(self, interval: float) -> float:
        """The spacing of the samples asked for: ``step``, else the analysis ``interval``."""
        return parse_duration(self.step) if self.step else interval


class Metric(_Model):
    #: May be empty, as in Flagger's CRD: a template or query metric needs no name (Flagger's own
    #: tests use ``name: ""``); a metric with neither is refused (config._rules).
    name: str
    interval: str | None = None
    threshold: float | None = None
    threshold_range: ThresholdRange | None = None
    query: str | None = None
    template_ref: LocalRef | None = None
    template_variables: dict[str, str] | None = None
    #: canary-engine extensions (README "The comparative judge", "Verdict policy").
    judge: Judge | None = None
    #: Evaluated and shown (simulate, events, logs) but never counted as failed or inconclusive.
    dry_run: bool = False
    #: What a check without data counts as: ``fail`` (Flagger), ``inconclusive`` or ``pass``;
    #: None when the manifest does not say (``no_data_policy`` is then Flagger's ``fail``).
    on_no_data: Literal["fail", "inconclusive", "pass"] | None = None

    @property
    def no_data_policy(self) -> Literal["fail", "inconclusive", "pass"]:
        """What a check without data counts as: ``onNoData``, else Flagger's failed check."""
        return self.on_no_data or "fail"

    _dur = field_validator("interval")(_check_metric_interval)
    _number = field_validator("threshold", mode="before")(_not_bool)
    _finite = field_validator("threshold")(_finite_bound)

    @property
    def interval_seconds(self) -> float:
        """Metric window; defaults to 1m for every metric (Flagger leaves templates empty, Q3).
        An interval that is no Go duration (``1min``) lasts what the CRD pattern matched of it
        (``1m``)."""
        if not self.interval:
            return DEFAULT_METRIC_INTERVAL_SECONDS
        try:
            return parse_duration(self.interval)
        except ValueError:
            matched = _CRD_DURATION.match(self.interval)
            assert matched is not None  # _check_metric_interval admitted it
            return parse_duration(matched.group(0))

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_METRICS


class Webhook(_Model):
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal[
        "",
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-promotion",
        "post-rollout",
        "event",
        "rollback",
        "confirm-traffic-increase",
    ] = ""
    mute_alert: bool = False
    timeout: str | None = None
    retries: int = Field(default=0, ge=0)
    disable_tls: bool = Field(default=False, alias="disableTLS")
    metadata: dict[str, str] | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        # (Flagger's code reads a timeout shorter than two characters as "the 10s default", but its
        # CRD lets none but an absent one through)
        return _check_crd_duration(value)

    @property
    def hook_type(self) -> HookType:
        return HookType(self.type) if self.type else HookType.ROLLOUT

    @property
    def timeout_seconds(self) -> float:
        # (Flagger's code also reads a timeout under two characters as the default; the CRD
        # pattern, which _timeout applies, lets none through.)
        return parse_duration(self.timeout) if self.timeout else DEFAULT_WEBHOOK_TIMEOUT_SECONDS


class Alert(_Model):
    name: str = Field(min_length=1)
    severity: Literal["", "info", "warn", "error"] = ""
    provider_ref: LocalRef

    @property
    def effective_severity(self) -> str:
        # Q6: an empty severity means info, as Flagger's docs say (Flagger itself never fires it).
        return self.severity or "info"


class SessionAffinity(_Model):
    cookie_name: str = Field(min_length=1)
    primary_cookie_name: str | None = None
    domain: str | None = None
    http_only: bool = False
    max_age: int = 86400
    partitioned: bool = False
    path: str | None = None
    same_site: Literal["Strict", "Lax", "None"] | None = None
    secure: bool = False


class Analysis(_Model):
    interval: str | None = None
    iterations: int | None = Field(default=None, ge=0)
    threshold: int | None = None
    max_weight: int | None = None
    step_weight: int | None = None
    step_weights: list[int] | None = None
    step_weight_promotion: int | None = None
    mirror: bool = False
    mirror_weight: int | None = None
    primary_ready_threshold: int | None = None
    canary_ready_threshold: int | None = None
    match: list[dict[str, Any]] | None = None
    session_affinity: SessionAffinity | None = None
    alerts: list[Alert] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    #: canary-engine extension: inconclusive ticks a run may have before each further one counts
    #: as a failed check (README "Verdict policy").
    inconclusive_limit: int = Field(default=DEFAULT_INCONCLUSIVE_LIMIT, ge=0)

    _dur = field_validator("interval")(_check_crd_duration)

    @field_validator("match")
    @classmethod
    def _matches(cls, matches: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return _check_matches(matches)

    @field_validator("max_weight", "step_weight_promotion", "mirror_weight")
    @classmethod
    def _percent_1(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= TOTAL_WEIGHT:
            raise _range_error(0, TOTAL_WEIGHT, value)
        return value

    @field_validator("step_weight")
    @classmethod
    def _step(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= TOTAL_WEIGHT:
            raise _range_error(0, TOTAL_WEIGHT, value)
        return value

    @field_validator("primary_ready_threshold", "canary_ready_threshold")
    @classmethod
    def _ready(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= TOTAL_WEIGHT:
            raise _range_error(0, TOTAL_WEIGHT, value)
        return value

    @field_validator("step_weights")
    @classmethod
    def _steps(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if any(w < 1 for w in value):
            raise PydanticCustomError(
                "step_weights", "every weight must be at least 1, got {value}", {"value": value}
            )
        if any(b <= a for a, b in itertools.pairwise(value)):
            # Flagger accepts this and then stalls: at a weight whose next entry is not larger its
            # nextStepWeight is <= 0, so the analysis runs on every interval and never promotes.
            raise PydanticCustomError(
                "step_weights",
                "must be strictly ascending, got {value}; Flagger stops at a weight whose next "
                "entry is not larger (the analysis runs on and the canary is never promoted). "
                "Remove the repeated or smaller weights",
                {"value": value},
            )
        return value

    # -- derived values, with Flagger's defaults ------------------------------------------------

    @property
    def interval_seconds(self) -> float:
        """Tick period: 60s when empty, never below 10s (Flagger's getter)."""
        if not self.interval:
            return DEFAULT_INTERVAL_SECONDS
        return max(parse_duration(self.interval), MIN_INTERVAL_SECONDS)

    @property
    def failed_checks_threshold(self) -> int:
        """Failed checks before rollback; ``<= 0`` means 1."""
        return self.threshold if self.threshold and self.threshold > 0 else 1

    @property
    def effective_max_weight(self) -> int:
        if self.step_weights:
            return min(TOTAL_WEIGHT, self.step_weights[-1])
        if self.max_weight and self.max_weight > 0:
            return self.max_weight
        return TOTAL_WEIGHT

    @property
    def effective_iterations(self) -> int:
        return self.iterations or 0

    @property
    def planned_ticks(self) -> int:
        """How many ticks the analysis checks, as planned: the steps to the maximum weight for
        the canary strategy, the iterations for blue/green and A/B testing (at least 1)."""
        if self.strategy is not Strategy.CANARY:
            return max(1, self.effective_iterations)
        if self.step_weights:
            return len(self.step_weights)
        step = self.step_weight or 0
        if step <= 0:
            return 1
        return max(1, math.ceil(self.effective_max_weight / step))

    @property
    def strategy(self) -> Strategy:
        if self.match and self.effective_iterations > 0:
            return Strategy.AB_TESTING
        if self.effective_iterations > 0:
            return Strategy.BLUE_GREEN
        return Strategy.CANARY

    @property
    def primary_ready_percent(self) -> int:
        return 100 if self.primary_ready_threshold is None else self.primary_ready_threshold

    @property
    def canary_ready_percent(self) -> int:
        return 100 if self.canary_ready_threshold is None else self.canary_ready_threshold

    def hooks(self, hook_type: HookType) -> list[Webhook]:
        return [w for w in self.webhooks if w.hook_type is hook_type]

    def next_step_weight(self, canary_weight: int) -> int:
        """Flagger's ``nextStepWeight``: how far the next advance moves the canary weight."""
        step = self.step_weight or 0
        if step > 0 or not self.step_weights:
            return step
        max_step = TOTAL_WEIGHT - canary_weight
        if max_step <= 0:
            return 1  # forces the promotion branch
        weights = self.step_weights
        if canary_weight == 0:
            return min(max_step, weights[0])
        for i, w in enumerate(weights[:-1]):
            if canary_weight == w:
                return min(max_step, weights[i + 1] - canary_weight)
        return max_step


class CanarySpec(_Model):
    provider: str | None = None
    metrics_server: str | None = None
    target_ref: TargetRef
    autoscaler_ref: AutoscalerRef | None = None
    ingress_ref: IngressRef | None = None
    route_ref: RouteRef | None = None
    upstream_ref: UpstreamRef | None = None
    #: Newer Flagger's gloo-mesh provider's RouteTable: read, so that the Canary is refused for
    #: its provider (not built here), not for an unknown field.
    route_table_ref: dict[str, Any] | None = None
    service: ServiceSpec | None = None
    analysis: Analysis | None = None
    canary_analysis: Analysis | None = None
    progress_deadline_seconds: int = Field(default=600, ge=0)
    skip_analysis: bool = False
    revert_on_deletion: bool = False
    suspend: bool = False

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not is_flagger_provider(value):
            raise PydanticCustomError(
                "provider",
                "unknown provider '{value}'; accepted: {accepted}",
                {"value": value, "accepted": ", ".join(FLAGGER_PROVIDERS)},
            )
        return value

    @model_validator(mode="after")
    def _analysis_present(self) -> CanarySpec:
        if self.analysis is None and self.canary_analysis is None:
            raise PydanticCustomError(
                "missing_analysis",
                "spec.analysis is required (interval, threshold and one of stepWeight, "
                "stepWeights or iterations)",
            )
        return self

    @property
    def effective_analysis(self) -> Analysis:
        """``analysis``, or the deprecated ``canaryAnalysis`` alias when ``analysis`` is absent."""
        found = self.analysis if self.analysis is not None else self.canary_analysis
        assert found is not None  # guaranteed by _analysis_present
        return found

    @property
    def service_name(self) -> str:
        return (
            self.service.name if self.service and self.service.name else None
        ) or self.target_ref.name


def is_flagger_provider(value: str) -> bool:
    """A ``spec.provider`` Flagger accepts: a CRD enum name or one of its suffixed forms."""
    return value in FLAGGER_PROVIDERS or _is_provider_variant(value)


def _is_provider_variant(value: str) -> bool:
    # Flagger also accepts suffixed forms such as "smi:v1alpha3:linkerd" and "gloo:..."
    return value.startswith(("smi:", "gloo", "appmesh:v1beta2", "gatewayapi:v1"))


class ObjectMeta(_Open):
    name: str = Field(min_length=1)
    namespace: str = "default"
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Canary(_Model):
    api_version: Literal["flagger.app/v1beta1"]
    kind: Literal["Canary"]
    metadata: ObjectMeta
    spec: CanarySpec
    status: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def dotted(self) -> str:
        """``<name>.<namespace>``, the form Flagger puts in event messages."""
        return f"{self.metadata.name}.{self.metadata.namespace}"


# ---------------------------------------------------------------------------------------------
# MetricTemplate and AlertProvider
# ---------------------------------------------------------------------------------------------

#: The metric providers' type names: one module each in analysis/providers (config cannot import
#: analysis; tests/analysis/providers/test_provider_registry.py keeps the two lists equal).
METRIC_PROVIDER_TYPES = (
    "prometheus",
    "influxdb",
    "datadog",
    "externalmetrics",
    "stackdriver",
    "cloudwatch",
    "newrelic",
    "graphite",
    "dynatrace",
    "keptn",
    "splunk",
    "signoz",
    "skywalking",
    "chronosphere",
    "azuremonitor",
)


class MetricTemplateProvider(_Model):
    type: str
    address: str | None = None
    headers: dict[str, str | list[str]] | None = None
    secret_ref: SecretRef | None = None
    region: str | None = None
    insecure_skip_verify: bool = False

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in METRIC_PROVIDER_TYPES:
            raise PydanticCustomError(
                "provider_type",
                "unknown metric provider type '{value}'; accepted: {accepted}",
                {"value": value, "accepted": ", ".join(METRIC_PROVIDER_TYPES)},
            )
        return value


class MetricTemplateSpec(_Model):
    provider: MetricTemplateProvider
    query: str = Field(min_length=1)


class MetricTemplate(_Model):
    api_version: Literal["flagger.app/v1beta1"]
    kind: Literal["MetricTemplate"]
    metadata: ObjectMeta
    spec: MetricTemplateSpec
    status: dict[str, Any] | None = None


class AlertProviderSpec(_Model):
    type: Literal["slack", "msteams", "discord", "rocket", "gchat"]
    channel: str | None = None
    username: str | None = None
    address: str | None = None
    proxy: str | None = None
    secret_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AlertProviderSpec:
        if bool(self.address) == bool(self.secret_ref):
            raise PydanticCustomError(
                "alert_target",
                "set exactly one of address (the hook URL) or secretRef (a Secret with key "
                "'address')",
            )
        return self


class AlertProvider(_Model):
    api_version: Literal["flagger.app/v1beta1"]
    kind: Literal["AlertProvider"]
    metadata: ObjectMeta
    spec: AlertProviderSpec
    status: dict[str, Any] | None = None
