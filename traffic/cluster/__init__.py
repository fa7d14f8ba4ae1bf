"""The Cluster seam: Kubernetes API operations on plain JSON bodies, real or in memory.

Public surface of ``traffic.cluster``: the ``Cluster`` protocol, ``Kind`` constants, ``ObjectRef``,
``WatchEvent``, the ``ClusterError`` tree, ``InMemoryCluster`` and ``KubeCluster``,
``MeshSplitCluster`` (mesh kinds on another cluster, ``--kubeconfig-service-mesh``), and
``TracksReads`` / ``ReadLog`` (what the cache-backed ``KubeCluster`` can say about a tick's
reads), and ``json_copy`` (the plain copy of a body to build on: what ``get`` and ``list`` hand
out is read-only). Only ``_kube.py`` may import kubernetes_asyncio.
"""

from typing import TYPE_CHECKING, Any

from traffic.cluster._errors import ClusterError as ClusterError
from traffic.cluster._errors import ClusterUnavailable as ClusterUnavailable
from traffic.cluster._errors import Conflict as Conflict
from traffic.cluster._errors import Forbidden as Forbidden
from traffic.cluster._errors import NotFound as NotFound
from traffic.cluster._json import json_copy as json_copy
from traffic.cluster._memory import InMemoryCluster as InMemoryCluster
from traffic.cluster._memory import apply_merge_patch as apply_merge_patch
from traffic.cluster._mesh import MeshSplitCluster as MeshSplitCluster
from traffic.cluster._mesh import is_mesh_kind as is_mesh_kind
from traffic.cluster._namespace import default_namespace as default_namespace
from traffic.cluster._protocol import ALERT_PROVIDER as ALERT_PROVIDER
from traffic.cluster._protocol import CANARY as CANARY
from traffic.cluster._protocol import CONFIGMAP as CONFIGMAP
from traffic.cluster._protocol import DAEMONSET as DAEMONSET
from traffic.cluster._protocol import DEFAULT_CACHE_KINDS as DEFAULT_CACHE_KINDS
from traffic.cluster._protocol import DEPLOYMENT as DEPLOYMENT
from traffic.cluster._protocol import DESTINATION_RULE as DESTINATION_RULE
from traffic.cluster._protocol import EVENT as EVENT
from traffic.cluster._protocol import HPA as HPA
from traffic.cluster._protocol import HTTP_ROUTE as HTTP_ROUTE
from traffic.cluster._protocol import HTTP_ROUTE_V1BETA1 as HTTP_ROUTE_V1BETA1
from traffic.cluster._protocol import INGRESS as INGRESS
from traffic.cluster._protocol import KNATIVE_REVISION as KNATIVE_REVISION
from traffic.cluster._protocol import KNATIVE_SERVICE as KNATIVE_SERVICE
from traffic.cluster._protocol import KNOWN_KINDS as KNOWN_KINDS
from traffic.cluster._protocol import LEASE as LEASE
from traffic.cluster._protocol import METRIC_TEMPLATE as METRIC_TEMPLATE
from traffic.cluster._protocol import SECRET as SECRET
from traffic.cluster._protocol import SERVICE as SERVICE
from traffic.cluster._protocol import VIRTUAL_SERVICE as VIRTUAL_SERVICE
from traffic.cluster._protocol import Body as Body
from traffic.cluster._protocol import Cluster as Cluster
from traffic.cluster._protocol import Kind as Kind
from traffic.cluster._protocol import ObjectRef as ObjectRef
from traffic.cluster._protocol import ReadBody as ReadBody
from traffic.cluster._protocol import WatchEvent as WatchEvent
from traffic.cluster._protocol import kind_of as kind_of
from traffic.cluster._protocol import register_kind as register_kind
from traffic.cluster._reads import ReadLog as ReadLog
from traffic.cluster._reads import TracksReads as TracksReads

if TYPE_CHECKING:
    from traffic.cluster._kube import KubeCluster as KubeCluster
    from traffic.cluster._kube import open_kube_cluster as open_kube_cluster
else:

    def open_kube_cluster(*args: Any, **kwargs: Any) -> Any:
        """KubeCluster over kubernetes-asyncio (imported lazily: ~300 ms that simulate and
        validate never need)."""
        from traffic.cluster._kube import open_kube_cluster as real

        return real(*args, **kwargs)


__all__ = [
    "ALERT_PROVIDER",
    "CANARY",
    "CONFIGMAP",
    "DAEMONSET",
    "DEFAULT_CACHE_KINDS",
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
    "Body",
    "Cluster",
    "ClusterError",
    "ClusterUnavailable",
    "Conflict",
    "Forbidden",
    "InMemoryCluster",
    "Kind",
    "MeshSplitCluster",
    "NotFound",
    "ObjectRef",
    "ReadBody",
    "ReadLog",
    "TracksReads",
    "WatchEvent",
    "apply_merge_patch",
    "default_namespace",
    "is_mesh_kind",
    "json_copy",
    "kind_of",
    "open_kube_cluster",
    "register_kind",
]
