"""router_for: an explicit registry; unsupported providers are errors, never a fallback."""

from __future__ import annotations

import pytest

from config import NotSupportedError
from traffic import InMemoryCluster, router_for, supported_providers
from traffic._gateway import GatewayApiRouter
from traffic._istio import IstioRouter
from traffic._kubernetes_router import KubernetesRouter
from traffic._nginx import NginxRouter


@pytest.mark.parametrize(
    ("provider", "kind"),
    [
        ("kubernetes", KubernetesRouter),
        ("istio", IstioRouter),
        ("gatewayapi:v1", GatewayApiRouter),
        ("gatewayapi:v1beta1", GatewayApiRouter),
        ("nginx", NginxRouter),
    ],
)
def test_each_supported_provider_has_its_router(provider: str, kind: type) -> None:
    assert isinstance(router_for(provider, InMemoryCluster()), kind)
    assert provider in supported_providers()


@pytest.mark.parametrize("provider", ["gatewayapi", "", "Istio", "supergloo"])
def test_unsupported_providers_name_the_supported_ones(provider: str) -> None:
    with pytest.raises(NotSupportedError) as err:
        router_for(provider, InMemoryCluster())
    # none of these is a provider Flagger knows either: not called "valid in Flagger"
    assert f"unknown provider {provider!r}" in str(err.value)
    assert f"built: {', '.join(supported_providers())}" in str(err.value)
    assert "istio" in supported_providers()
