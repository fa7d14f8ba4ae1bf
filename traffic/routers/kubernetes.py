"""Provider ``kubernetes``: no mesh; the apex Service selector and a replica split
(``traffic._kubernetes_router``).

Weighted by replicas (our Q16; Flagger's is blue/green only); no header matches, no mirror.
"""

from __future__ import annotations

from collections.abc import Iterable

from config import Canary, Capabilities, Problem, RouterRules
from traffic._deployment import DeploymentWorkload
from traffic._kubernetes_router import (
    DAEMONSET_SPLIT_MESSAGE,
    SERVICE_TARGET_MESSAGE,
    KubernetesRouter,
    daemonset_split_refused,
)
from traffic._registry import RouterModule


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if canary.spec.target_ref.kind == "Service":
        yield Problem("spec.provider", SERVICE_TARGET_MESSAGE)
    if daemonset_split_refused(canary):
        yield Problem(f"{analysis_key}.iterations", DAEMONSET_SPLIT_MESSAGE)


ROUTER = RouterModule(
    names=("kubernetes",),
    rules=RouterRules(label="kubernetes", capabilities=Capabilities(weighted=True), check=_check),
    build=lambda cluster, _provider, options: KubernetesRouter(
        cluster,
        selector_labels=options.selector_labels,
        # the split in pod counts is what the Deployment workload offers
        replica_split=DeploymentWorkload(
            cluster, selector_labels=options.selector_labels
        ).replica_split(),
    ),
)
