"""Provider ``istio``: VirtualService and DestinationRules (``traffic._istio``)."""

from __future__ import annotations

from config import Capabilities, RouterRules
from traffic._istio import IstioRouter
from traffic._registry import RouterModule
from traffic.cluster import DESTINATION_RULE, VIRTUAL_SERVICE

ROUTER = RouterModule(
    names=("istio",),
    rules=RouterRules(
        label="istio",
        capabilities=Capabilities(ab_testing=True, mirroring=True, session_affinity=True),
    ),
    build=lambda cluster, _provider, options: IstioRouter(
        cluster, selector_labels=options.selector_labels
    ),
    kinds=(VIRTUAL_SERVICE, DESTINATION_RULE),
)
