"""Configuration layer: Flagger's manifests as typed, validated data; presets; durations; errors.

Bottom layer: pure data, no I/O beyond reading manifest files, no asyncio. Every other package may
import it; it imports none of them.
"""

from config._canary_memo import CanaryMemo as CanaryMemo
from config._durations import format_go_duration as format_go_duration
from config._durations import format_interval as format_interval
from config._durations import parse_duration as parse_duration
from config._last_analysis import AchievedWeights as AchievedWeights
from config._last_analysis import CheckRecord as CheckRecord
from config._last_analysis import LastAnalysis as LastAnalysis
from config._last_analysis import WebhookRecord as WebhookRecord
from config._loading import Manifests as Manifests
from config._loading import load_manifests as load_manifests
from config._loading import parse_alert_provider as parse_alert_provider
from config._loading import parse_canary as parse_canary
from config._loading import parse_metric_template as parse_metric_template
from config._presets import PRESETS as PRESETS
from config._presets import Preset as Preset
from config._presets import apply_preset as apply_preset
from config._routers import Capabilities as Capabilities
from config._routers import RouterRules as RouterRules
from config._routers import register_router_rules as register_router_rules
from config._routers import registered_router_names as registered_router_names
from config._routers import resolve_router_name as resolve_router_name
from config._routers import router_rules as router_rules
from config._routers import routers_that as routers_that
from config._rules import cross_namespace_problems as cross_namespace_problems
from config._spec import API_VERSION as API_VERSION
from config._spec import BUILTIN_METRICS as BUILTIN_METRICS
from config._spec import DEFAULT_MESH_PROVIDER as DEFAULT_MESH_PROVIDER
from config._spec import FLAGGER_PROVIDERS as FLAGGER_PROVIDERS
from config._spec import METRIC_PROVIDER_TYPES as METRIC_PROVIDER_TYPES
from config._spec import TOTAL_WEIGHT as TOTAL_WEIGHT
from config._spec import Alert as Alert
from config._spec import AlertProvider as AlertProvider
from config._spec import Analysis as Analysis
from config._spec import Canary as Canary
from config._spec import CanarySpec as CanarySpec
from config._spec import HookType as HookType
from config._spec import Judge as Judge
from config._spec import Metric as Metric
from config._spec import MetricTemplate as MetricTemplate
from config._spec import MetricTemplateProvider as MetricTemplateProvider
from config._spec import ServiceSpec as ServiceSpec
from config._spec import Strategy as Strategy
from config._spec import ThresholdRange as ThresholdRange
from config._spec import Webhook as Webhook
from config._spec import is_flagger_provider as is_flagger_provider
from config._status import ACTIVE_PHASES as ACTIVE_PHASES
from config._status import CanaryStatus as CanaryStatus
from config._status import Condition as Condition
from config._status import HandledCommand as HandledCommand
from config._status import Phase as Phase
from config._status import promoted_condition_for as promoted_condition_for
from config._status import status_gauge as status_gauge
from config._urls import url_problem as url_problem
from config._yaml import read_documents as read_documents
from config.errors import CanaryEngineError as CanaryEngineError
from config.errors import NotSupportedError as NotSupportedError
from config.errors import Problem as Problem
from config.errors import SpecError as SpecError
from config.errors import printable as printable

__all__ = [
    "ACTIVE_PHASES",
    "API_VERSION",
    "BUILTIN_METRICS",
    "DEFAULT_MESH_PROVIDER",
    "FLAGGER_PROVIDERS",
    "METRIC_PROVIDER_TYPES",
    "PRESETS",
    "TOTAL_WEIGHT",
    "AchievedWeights",
    "Alert",
    "AlertProvider",
    "Analysis",
    "Canary",
    "CanaryEngineError",
    "CanaryMemo",
    "CanarySpec",
    "CanaryStatus",
    "Capabilities",
    "CheckRecord",
    "Condition",
    "HandledCommand",
    "HookType",
    "Judge",
    "LastAnalysis",
    "Manifests",
    "Metric",
    "MetricTemplate",
    "MetricTemplateProvider",
    "NotSupportedError",
    "Phase",
    "Preset",
    "Problem",
    "RouterRules",
    "ServiceSpec",
    "SpecError",
    "Strategy",
    "ThresholdRange",
    "Webhook",
    "WebhookRecord",
    "apply_preset",
    "cross_namespace_problems",
    "format_go_duration",
    "format_interval",
    "is_flagger_provider",
    "load_manifests",
    "parse_alert_provider",
    "parse_canary",
    "parse_duration",
    "parse_metric_template",
    "printable",
    "promoted_condition_for",
    "read_documents",
    "register_router_rules",
    "registered_router_names",
    "resolve_router_name",
    "router_rules",
    "routers_that",
    "status_gauge",
    "url_problem",
]
