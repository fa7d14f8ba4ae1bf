"""Analysis layer: "is the canary healthy?" — plan, fetch and judge metric checks; call webhooks.

Middle layer: imports ``config`` only (never ``engine`` or ``traffic``), never touches Kubernetes,
and gets time as a ``now()`` function. numpy stays inside this package; httpx is used only by the
Prometheus source, the other metric providers (``analysis.providers``), and the webhook caller,
whose clients are opened by async context managers the engine owns.

Flow for one tick: ``plan_checks(canary, templates, provider=..., default_server=...)`` (each
``Check`` a ``MetricQuery``, what is asked and where, with its ``thresholdRange``) ->
``analyze(source, checks)`` (one fetch of the queries, one vectorised ``evaluate``) ->
``CheckResult``s with Flagger's event messages; ``plan_queries`` is the queries alone.
``simulate`` answers from a ``Recording`` through
``RecordedMetricSource`` / ``RecordedWebhooks``; live runs use ``open_metric_sources`` (every
MetricTemplate provider; Prometheus through a ``PrometheusSource`` that sends one grouped query
per query shape for all canaries) and
``open_webhook_caller``; ``record`` / ``write_recording`` capture a recording from Prometheus.

Names are imported on first use (PEP 562), so a command that needs one name (``validate``,
``get``, ``--help``) does not pay for numpy, httpx and every module of the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis._analyzer import analyze as analyze
    from analysis._analyzer import analyze_batches as analyze_batches
    from analysis._analyzer import first_failure as first_failure
    from analysis._analyzer import score_checks as score_checks
    from analysis._answers import read_head as read_head
    from analysis._builtins import BUILTIN_PROVIDERS as BUILTIN_PROVIDERS
    from analysis._builtins import BuiltinQueries as BuiltinQueries
    from analysis._builtins import builtin_queries as builtin_queries
    from analysis._errors import AmbiguousResult as AmbiguousResult
    from analysis._errors import AnalysisError as AnalysisError
    from analysis._errors import MetricQueryError as MetricQueryError
    from analysis._errors import NoValuesFound as NoValuesFound
    from analysis._errors import ProviderUnavailable as ProviderUnavailable
    from analysis._errors import QueryRejected as QueryRejected
    from analysis._errors import QueryTimeout as QueryTimeout
    from analysis._errors import RenderError as RenderError
    from analysis._evaluate import bounds_for as bounds_for
    from analysis._evaluate import evaluate as evaluate
    from analysis._evaluate import evaluate_reference as evaluate_reference
    from analysis._grouping import GROUPED_PROVIDERS as GROUPED_PROVIDERS
    from analysis._judge import JudgeInput as JudgeInput
    from analysis._judge import JudgeOutcome as JudgeOutcome
    from analysis._judge import judge_batch as judge_batch
    from analysis._judged import JudgeTick as JudgeTick
    from analysis._judged import judge_checks as judge_checks
    from analysis._judged import judge_ticks as judge_ticks
    from analysis._plan import plan_checks as plan_checks
    from analysis._plan import plan_queries as plan_queries
    from analysis._prometheus import Credentials as Credentials
    from analysis._prometheus import PrometheusSource as PrometheusSource
    from analysis._prometheus import open_prometheus as open_prometheus
    from analysis._record import RecordResult as RecordResult
    from analysis._record import parse_step as parse_step
    from analysis._record import parse_time as parse_time
    from analysis._record import record as record
    from analysis._record import write_recording as write_recording
    from analysis._recorded import RecordedMetricSource as RecordedMetricSource
    from analysis._recorded import RecordedWebhooks as RecordedWebhooks
    from analysis._recorded import WebhookCall as WebhookCall
    from analysis._recorded import history_samples as history_samples
    from analysis._recording import LOOKBACK_SECONDS as LOOKBACK_SECONDS
    from analysis._recording import Recording as Recording
    from analysis._recording import load_recording as load_recording
    from analysis._recording import parse_csv as parse_csv
    from analysis._recording import parse_json as parse_json
    from analysis._redirects import check_port as check_port
    from analysis._render import collapse_whitespace as collapse_whitespace
    from analysis._render import render_query as render_query
    from analysis._replay import BatchPlan as BatchPlan
    from analysis._replay import BatchResult as BatchResult
    from analysis._replay import ReplayLimits as ReplayLimits
    from analysis._replay import batch_unsupported as batch_unsupported
    from analysis._replay import compile_plan as compile_plan
    from analysis._replay import replay_batch as replay_batch
    from analysis._template_model import TemplateModel as TemplateModel
    from analysis._text import HOOK_PATH_MASK as HOOK_PATH_MASK
    from analysis._text import clip as clip
    from analysis._text import header_secrets as header_secrets
    from analysis._text import hook_secrets as hook_secrets
    from analysis._text import redact as redact
    from analysis._text import redact_url as redact_url
    from analysis._text import remember as remember
    from analysis._text import url_secrets as url_secrets
    from analysis._trust import system_trust as system_trust
    from analysis._types import Check as Check
    from analysis._types import CheckKind as CheckKind
    from analysis._types import CheckResult as CheckResult
    from analysis._types import Endpoint as Endpoint
    from analysis._types import FailureKind as FailureKind
    from analysis._types import HookOutcome as HookOutcome
    from analysis._types import MetricQuery as MetricQuery
    from analysis._types import MetricSource as MetricSource
    from analysis._types import QueryFailure as QueryFailure
    from analysis._types import Series as Series
    from analysis._types import SeriesRequest as SeriesRequest
    from analysis._types import SeriesSource as SeriesSource
    from analysis._types import Verdict as Verdict
    from analysis._types import WebhookCaller as WebhookCaller
    from analysis._webhooks import HttpWebhookCaller as HttpWebhookCaller
    from analysis._webhooks import open_webhook_caller as open_webhook_caller
    from analysis._webhooks import webhook_payload as webhook_payload
    from analysis.providers import BUILT_PROVIDERS as BUILT_METRIC_PROVIDERS
    from analysis.providers import PROVIDERS as METRIC_PROVIDERS
    from analysis.providers import MetricSources as MetricSources
    from analysis.providers import open_metric_sources as open_metric_sources
    from analysis.providers import record_series as record_series
    from analysis.providers import template_problems as template_problems

_WHERE: dict[str, tuple[str, str]] = {
    "analyze": ("analysis._analyzer", "analyze"),
    "analyze_batches": ("analysis._analyzer", "analyze_batches"),
    "first_failure": ("analysis._analyzer", "first_failure"),
    "score_checks": ("analysis._analyzer", "score_checks"),
    "BUILTIN_PROVIDERS": ("analysis._builtins", "BUILTIN_PROVIDERS"),
    "BuiltinQueries": ("analysis._builtins", "BuiltinQueries"),
    "builtin_queries": ("analysis._builtins", "builtin_queries"),
    "AmbiguousResult": ("analysis._errors", "AmbiguousResult"),
    "AnalysisError": ("analysis._errors", "AnalysisError"),
    "MetricQueryError": ("analysis._errors", "MetricQueryError"),
    "NoValuesFound": ("analysis._errors", "NoValuesFound"),
    "ProviderUnavailable": ("analysis._errors", "ProviderUnavailable"),
    "QueryRejected": ("analysis._errors", "QueryRejected"),
    "QueryTimeout": ("analysis._errors", "QueryTimeout"),
    "RenderError": ("analysis._errors", "RenderError"),
    "bounds_for": ("analysis._evaluate", "bounds_for"),
    "evaluate": ("analysis._evaluate", "evaluate"),
    "evaluate_reference": ("analysis._evaluate", "evaluate_reference"),
    "GROUPED_PROVIDERS": ("analysis._grouping", "GROUPED_PROVIDERS"),
    "JudgeInput": ("analysis._judge", "JudgeInput"),
    "JudgeOutcome": ("analysis._judge", "JudgeOutcome"),
    "judge_batch": ("analysis._judge", "judge_batch"),
    "JudgeTick": ("analysis._judged", "JudgeTick"),
    "judge_checks": ("analysis._judged", "judge_checks"),
    "judge_ticks": ("analysis._judged", "judge_ticks"),
    "plan_checks": ("analysis._plan", "plan_checks"),
    "plan_queries": ("analysis._plan", "plan_queries"),
    "Credentials": ("analysis._prometheus", "Credentials"),
    "PrometheusSource": ("analysis._prometheus", "PrometheusSource"),
    "open_prometheus": ("analysis._prometheus", "open_prometheus"),
    "RecordResult": ("analysis._record", "RecordResult"),
    "parse_step": ("analysis._record", "parse_step"),
    "parse_time": ("analysis._record", "parse_time"),
    "record": ("analysis._record", "record"),
    "write_recording": ("analysis._record", "write_recording"),
    "RecordedMetricSource": ("analysis._recorded", "RecordedMetricSource"),
    "history_samples": ("analysis._recorded", "history_samples"),
    "RecordedWebhooks": ("analysis._recorded", "RecordedWebhooks"),
    "WebhookCall": ("analysis._recorded", "WebhookCall"),
    "LOOKBACK_SECONDS": ("analysis._recording", "LOOKBACK_SECONDS"),
    "Recording": ("analysis._recording", "Recording"),
    "load_recording": ("analysis._recording", "load_recording"),
    "parse_csv": ("analysis._recording", "parse_csv"),
    "parse_json": ("analysis._recording", "parse_json"),
    "TemplateModel": ("analysis._template_model", "TemplateModel"),
    "collapse_whitespace": ("analysis._render", "collapse_whitespace"),
    "render_query": ("analysis._render", "render_query"),
    "BatchPlan": ("analysis._replay", "BatchPlan"),
    "BatchResult": ("analysis._replay", "BatchResult"),
    "ReplayLimits": ("analysis._replay", "ReplayLimits"),
    "batch_unsupported": ("analysis._replay", "batch_unsupported"),
    "compile_plan": ("analysis._replay", "compile_plan"),
    "replay_batch": ("analysis._replay", "replay_batch"),
    "read_head": ("analysis._answers", "read_head"),
    "check_port": ("analysis._redirects", "check_port"),
    "header_secrets": ("analysis._text", "header_secrets"),
    "hook_secrets": ("analysis._text", "hook_secrets"),
    "redact": ("analysis._text", "redact"),
    "HOOK_PATH_MASK": ("analysis._text", "HOOK_PATH_MASK"),
    "clip": ("analysis._text", "clip"),
    "redact_url": ("analysis._text", "redact_url"),
    "remember": ("analysis._text", "remember"),
    "url_secrets": ("analysis._text", "url_secrets"),
    "system_trust": ("analysis._trust", "system_trust"),
    "Check": ("analysis._types", "Check"),
    "CheckKind": ("analysis._types", "CheckKind"),
    "CheckResult": ("analysis._types", "CheckResult"),
    "Endpoint": ("analysis._types", "Endpoint"),
    "FailureKind": ("analysis._types", "FailureKind"),
    "HookOutcome": ("analysis._types", "HookOutcome"),
    "MetricQuery": ("analysis._types", "MetricQuery"),
    "MetricSource": ("analysis._types", "MetricSource"),
    "QueryFailure": ("analysis._types", "QueryFailure"),
    "Series": ("analysis._types", "Series"),
    "SeriesRequest": ("analysis._types", "SeriesRequest"),
    "SeriesSource": ("analysis._types", "SeriesSource"),
    "Verdict": ("analysis._types", "Verdict"),
    "WebhookCaller": ("analysis._types", "WebhookCaller"),
    "HttpWebhookCaller": ("analysis._webhooks", "HttpWebhookCaller"),
    "open_webhook_caller": ("analysis._webhooks", "open_webhook_caller"),
    "webhook_payload": ("analysis._webhooks", "webhook_payload"),
    "BUILT_METRIC_PROVIDERS": ("analysis.providers", "BUILT_PROVIDERS"),
    "METRIC_PROVIDERS": ("analysis.providers", "PROVIDERS"),
    "MetricSources": ("analysis.providers", "MetricSources"),
    "open_metric_sources": ("analysis.providers", "open_metric_sources"),
    "record_series": ("analysis.providers", "record_series"),
    "template_problems": ("analysis.providers", "template_problems"),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "BUILTIN_PROVIDERS",
    "BUILT_METRIC_PROVIDERS",
    "GROUPED_PROVIDERS",
    "HOOK_PATH_MASK",
    "LOOKBACK_SECONDS",
    "METRIC_PROVIDERS",
    "AmbiguousResult",
    "AnalysisError",
    "BatchPlan",
    "BatchResult",
    "BuiltinQueries",
    "Check",
    "CheckKind",
    "CheckResult",
    "Credentials",
    "Endpoint",
    "FailureKind",
    "HookOutcome",
    "HttpWebhookCaller",
    "JudgeInput",
    "JudgeOutcome",
    "JudgeTick",
    "MetricQuery",
    "MetricQueryError",
    "MetricSource",
    "MetricSources",
    "NoValuesFound",
    "PrometheusSource",
    "ProviderUnavailable",
    "QueryFailure",
    "QueryRejected",
    "QueryTimeout",
    "RecordResult",
    "RecordedMetricSource",
    "RecordedWebhooks",
    "Recording",
    "RenderError",
    "ReplayLimits",
    "Series",
    "SeriesRequest",
    "SeriesSource",
    "TemplateModel",
    "Verdict",
    "WebhookCall",
    "WebhookCaller",
    "analyze",
    "analyze_batches",
    "batch_unsupported",
    "bounds_for",
    "builtin_queries",
    "check_port",
    "clip",
    "collapse_whitespace",
    "compile_plan",
    "evaluate",
    "evaluate_reference",
    "first_failure",
    "header_secrets",
    "history_samples",
    "hook_secrets",
    "judge_batch",
    "judge_checks",
    "judge_ticks",
    "load_recording",
    "open_metric_sources",
    "open_prometheus",
    "open_webhook_caller",
    "parse_csv",
    "parse_json",
    "parse_step",
    "parse_time",
    "plan_checks",
    "plan_queries",
    "read_head",
    "record",
    "record_series",
    "redact",
    "redact_url",
    "remember",
    "render_query",
    "replay_batch",
    "score_checks",
    "system_trust",
    "template_problems",
    "url_secrets",
    "webhook_payload",
    "write_recording",
]
