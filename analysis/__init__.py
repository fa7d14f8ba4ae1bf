"""Analysis layer: "is the canary healthy?" — plan, fetch and judge metric checks; call webhooks.

Middle layer: imports ``config`` only (never ``engine`` or ``traffic``), never touches Kubernetes,
and gets time as a ``now()`` function. numpy stays inside this package; httpx is used only by the
Prometheus source, the webhook caller and the alert sender, whose clients are opened by async
context managers the engine owns.

Flow for one tick: ``plan_checks(canary, templates, provider=..., default_server=...)`` ->
``analyze(source, queries)`` (one fetch, one vectorised ``evaluate``) -> ``CheckResult``s with
Flagger's event messages. ``simulate`` answers from a ``Recording`` through
``RecordedMetricSource`` / ``RecordedWebhooks``; live runs use ``open_prometheus`` (a
``PrometheusSource`` that sends one grouped query per query shape for all canaries) and
``open_webhook_caller``; ``record`` / ``write_recording`` capture a recording from Prometheus.
"""

from analysis._alerts import ALERT_PROVIDER_TYPES as ALERT_PROVIDER_TYPES
from analysis._alerts import ALERT_TIMEOUT_SECONDS as ALERT_TIMEOUT_SECONDS
from analysis._alerts import DEFAULT_ALERT_CHANNEL as DEFAULT_ALERT_CHANNEL
from analysis._alerts import DEFAULT_ALERT_USERNAME as DEFAULT_ALERT_USERNAME
from analysis._alerts import AlertField as AlertField
from analysis._alerts import AlertSender as AlertSender
from analysis._alerts import HttpAlertSender as HttpAlertSender
from analysis._alerts import alert_payload as alert_payload
from analysis._alerts import discord_url as discord_url
from analysis._alerts import gchat_payload as gchat_payload
from analysis._alerts import msteams_payload as msteams_payload
from analysis._alerts import open_alert_sender as open_alert_sender
from analysis._alerts import rocket_payload as rocket_payload
from analysis._alerts import slack_payload as slack_payload
from analysis._analyzer import analyze as analyze
from analysis._analyzer import analyze_batches as analyze_batches
from analysis._analyzer import first_failure as first_failure
from analysis._analyzer import score_checks as score_checks
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
from analysis._recording import LOOKBACK_SECONDS as LOOKBACK_SECONDS
from analysis._recording import Recording as Recording
from analysis._recording import load_recording as load_recording
from analysis._recording import parse_csv as parse_csv
from analysis._recording import parse_json as parse_json
from analysis._render import TemplateModel as TemplateModel
from analysis._render import collapse_whitespace as collapse_whitespace
from analysis._render import render_query as render_query
from analysis._text import header_secrets as header_secrets
from analysis._text import hook_secrets as hook_secrets
from analysis._text import redact as redact
from analysis._text import redact_url as redact_url
from analysis._text import remember as remember
from analysis._text import url_secrets as url_secrets
from analysis._types import CheckKind as CheckKind
from analysis._types import CheckResult as CheckResult
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

__all__ = [
    "ALERT_PROVIDER_TYPES",
    "ALERT_TIMEOUT_SECONDS",
    "BUILTIN_PROVIDERS",
    "DEFAULT_ALERT_CHANNEL",
    "DEFAULT_ALERT_USERNAME",
    "GROUPED_PROVIDERS",
    "LOOKBACK_SECONDS",
    "AlertField",
    "AlertSender",
    "AmbiguousResult",
    "AnalysisError",
    "BuiltinQueries",
    "CheckKind",
    "CheckResult",
    "Credentials",
    "FailureKind",
    "HookOutcome",
    "HttpAlertSender",
    "HttpWebhookCaller",
    "JudgeInput",
    "JudgeOutcome",
    "JudgeTick",
    "MetricQuery",
    "MetricQueryError",
    "MetricSource",
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
    "Series",
    "SeriesRequest",
    "SeriesSource",
    "TemplateModel",
    "Verdict",
    "WebhookCall",
    "WebhookCaller",
    "alert_payload",
    "analyze",
    "analyze_batches",
    "bounds_for",
    "builtin_queries",
    "collapse_whitespace",
    "discord_url",
    "evaluate",
    "evaluate_reference",
    "first_failure",
    "gchat_payload",
    "header_secrets",
    "hook_secrets",
    "judge_batch",
    "judge_checks",
    "judge_ticks",
    "load_recording",
    "msteams_payload",
    "open_alert_sender",
    "open_prometheus",
    "open_webhook_caller",
    "parse_csv",
    "parse_json",
    "parse_step",
    "parse_time",
    "plan_checks",
    "record",
    "redact",
    "redact_url",
    "remember",
    "render_query",
    "rocket_payload",
    "score_checks",
    "slack_payload",
    "url_secrets",
    "webhook_payload",
    "write_recording",
]
