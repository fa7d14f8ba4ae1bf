"""Provider ``nginx``: a ``-canary`` copy of the user's Ingress with canary annotations
(``traffic._nginx``). Needs ``spec.ingressRef``."""

from __future__ import annotations

from collections.abc import Iterable

from config import Canary, Capabilities, Problem, RouterRules
from traffic._nginx import NginxRouter
from traffic._registry import RouterModule
from traffic.cluster import INGRESS


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if canary.spec.ingress_ref is None:
        yield Problem("spec.ingressRef", "required when provider is nginx")


ROUTER = RouterModule(
    names=("nginx",),
    rules=RouterRules(label="nginx", capabilities=Capabilities(ab_testing=True), check=_check),
    build=lambda cluster, _provider, options: NginxRouter(
        cluster,
        selector_labels=options.selector_labels,
        annotations_prefix=options.ingress_annotations_prefix,
    ),
    kinds=(INGRESS,),
)
