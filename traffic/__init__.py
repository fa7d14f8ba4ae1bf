"""Traffic layer: make the cluster look like the engine asks, and report what it sees.

Middle layer: imports ``config`` only (never ``engine`` or ``analysis``), and never judges
health. ``Router`` implementations (one per provider, built by ``router_for``) move traffic
between ``<svc>-primary`` and ``<svc>-canary``; ``DeploymentWorkload`` manages the target
Deployment and its ``-primary`` copy. Both work through a ``Cluster`` given to their
constructor (``traffic.cluster``: the real API server, or ``InMemoryCluster``).
"""

from traffic._daemonset import DaemonSetWorkload as DaemonSetWorkload
from traffic._deployment import DeploymentWorkload as DeploymentWorkload
from traffic._deployment import config_checksum as config_checksum
from traffic._deployment import is_own_revision_hash as is_own_revision_hash
from traffic._deployment import template_hash as template_hash
from traffic._errors import RoutingError as RoutingError
from traffic._errors import WorkloadError as WorkloadError
from traffic._kubernetes_router import WEIGHTS_ANNOTATION as WEIGHTS_ANNOTATION
from traffic._kubernetes_router import achieved_weights as achieved_weights
from traffic._kubernetes_router import canary_replicas as canary_replicas
from traffic._objects import APEX_LABEL as APEX_LABEL
from traffic._objects import DEFAULT_SELECTOR_LABELS as DEFAULT_SELECTOR_LABELS
from traffic._registry import RouterModule as RouterModule
from traffic._registry import RouterOptions as RouterOptions
from traffic._registry import builtin_metrics_provider as builtin_metrics_provider
from traffic._registry import builtin_queries_provider as builtin_queries_provider
from traffic._registry import load_routers as load_routers
from traffic._registry import not_built_message as not_built_message
from traffic._registry import not_built_problems as not_built_problems
from traffic._registry import router_capabilities as router_capabilities
from traffic._registry import router_for as router_for
from traffic._registry import router_module as router_module
from traffic._registry import supported_providers as supported_providers
from traffic._secret_data import SecretDataError as SecretDataError
from traffic._secret_data import decode_secret_data as decode_secret_data
from traffic._session_affinity import status_cookies as status_cookies
from traffic._types import Readiness as Readiness
from traffic._types import Revision as Revision
from traffic._types import Router as Router
from traffic._types import Routes as Routes
from traffic._types import Weights as Weights
from traffic._types import Workload as Workload
from traffic._workloads import TargetWorkload as TargetWorkload
from traffic.cluster import ALERT_PROVIDER as ALERT_PROVIDER
from traffic.cluster import CANARY as CANARY
from traffic.cluster import CONFIGMAP as CONFIGMAP
from traffic.cluster import DAEMONSET as DAEMONSET
from traffic.cluster import DEFAULT_CACHE_KINDS as DEFAULT_CACHE_KINDS
from traffic.cluster import DEPLOYMENT as DEPLOYMENT
from traffic.cluster import DESTINATION_RULE as DESTINATION_RULE
from traffic.cluster import EVENT as EVENT
from traffic.cluster import HPA as HPA
from traffic.cluster import HTTP_ROUTE as HTTP_ROUTE
from traffic.cluster import HTTP_ROUTE_V1BETA1 as HTTP_ROUTE_V1BETA1
from traffic.cluster import INGRESS as INGRESS
from traffic.cluster import KNATIVE_REVISION as KNATIVE_REVISION
from traffic.cluster import KNATIVE_SERVICE as KNATIVE_SERVICE
from traffic.cluster import KNOWN_KINDS as KNOWN_KINDS
from traffic.cluster import LEASE as LEASE
from traffic.cluster import METRIC_TEMPLATE as METRIC_TEMPLATE
from traffic.cluster import SECRET as SECRET
from traffic.cluster import SERVICE as SERVICE
from traffic.cluster import VIRTUAL_SERVICE as VIRTUAL_SERVICE
from traffic.cluster import Body as Body
from traffic.cluster import Cluster as Cluster
from traffic.cluster import ClusterError as ClusterError
from traffic.cluster import ClusterUnavailable as ClusterUnavailable
from traffic.cluster import Conflict as Conflict
from traffic.cluster import InMemoryCluster as InMemoryCluster
from traffic.cluster import Kind as Kind
from traffic.cluster import MeshSplitCluster as MeshSplitCluster
from traffic.cluster import NotFound as NotFound
from traffic.cluster import ObjectRef as ObjectRef
from traffic.cluster import ReadLog as ReadLog
from traffic.cluster import TracksReads as TracksReads
from traffic.cluster import WatchEvent as WatchEvent
from traffic.cluster import apply_merge_patch as apply_merge_patch
from traffic.cluster import kind_of as kind_of
from traffic.cluster import open_kube_cluster as open_kube_cluster

__all__ = [
    "ALERT_PROVIDER",
    "APEX_LABEL",
    "CANARY",
    "CONFIGMAP",
    "DAEMONSET",
    "DEFAULT_CACHE_KINDS",
    "DEFAULT_SELECTOR_LABELS",
    "DEPLOYMENT",
    "DESTINATION_RULE",
    "EVENT",
    "HPA",
    "HTTP_ROUTE",
    "HTTP_ROUTE_V1BETA1",
    "INGRESS",
    "KNATIVE_REVISION",
    "KNATIVE_SERVICE",
    "KNOWN_KINDS",
    "LEASE",
    "METRIC_TEMPLATE",
    "SECRET",
    "SERVICE",
    "VIRTUAL_SERVICE",
    "WEIGHTS_ANNOTATION",
    "Body",
    "Cluster",
    "ClusterError",
    "ClusterUnavailable",
    "Conflict",
    "DaemonSetWorkload",
    "DeploymentWorkload",
    "InMemoryCluster",
    "Kind",
    "MeshSplitCluster",
    "NotFound",
    "ObjectRef",
    "ReadLog",
    "Readiness",
    "Revision",
    "Router",
    "RouterModule",
    "RouterOptions",
    "Routes",
    "RoutingError",
    "SecretDataError",
    "TargetWorkload",
    "TracksReads",
    "WatchEvent",
    "Weights",
    "Workload",
    "WorkloadError",
    "achieved_weights",
    "apply_merge_patch",
    "builtin_metrics_provider",
    "builtin_queries_provider",
    "canary_replicas",
    "config_checksum",
    "decode_secret_data",
    "is_own_revision_hash",
    "kind_of",
    "load_routers",
    "not_built_message",
    "not_built_problems",
    "open_kube_cluster",
    "router_capabilities",
    "router_for",
    "router_module",
    "status_cookies",
    "supported_providers",
    "template_hash",
]

# Router modules register their provider rules (config) and kinds (cluster) on import.
load_routers()
