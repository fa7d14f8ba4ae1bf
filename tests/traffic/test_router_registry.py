"""The router registry: each module of traffic.routers declares its router, and everything that
names providers (the loader, validate, the CLI, the engine, the builtin queries) reads it."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from traffic_testkit import canary_body, make_canary

import config._routers
import traffic._registry
import traffic.routers
from analysis import BUILTIN_PROVIDERS
from config import (
    FLAGGER_PROVIDERS,
    NotSupportedError,
    SpecError,
    parse_canary,
    registered_router_names,
)
from engine.cli import main
from traffic import (
    InMemoryCluster,
    builtin_metrics_provider,
    builtin_queries_provider,
    not_built_problems,
    router_capabilities,
    router_for,
    router_module,
    supported_providers,
)


def test_the_loader_knows_every_router_the_registry_builds() -> None:
    assert set(registered_router_names()) == set(supported_providers())
    # every name is one Flagger accepts in spec.provider
    assert set(supported_providers()) <= set(FLAGGER_PROVIDERS)


@pytest.mark.parametrize("provider", FLAGGER_PROVIDERS)
def test_every_provider_flagger_accepts_has_a_router(provider: str) -> None:
    module = router_module(provider)
    assert module is not None, f"{provider} is valid in Flagger but no router module serves it"
    router = router_for(provider, InMemoryCluster())  # builds: NotSupportedError otherwise
    assert type(router).__module__.startswith("traffic.")


@pytest.mark.parametrize("provider", supported_providers())
def test_every_router_names_builtin_queries_analysis_has(provider: str) -> None:
    name = builtin_metrics_provider(provider)
    assert name is None or name in BUILTIN_PROVIDERS


def test_suffixed_provider_variants_resolve_to_their_router() -> None:
    assert router_module("smi:v1alpha3:linkerd") is router_module("smi:v1alpha3")
    assert builtin_metrics_provider("smi:v1alpha3:linkerd") == "linkerd"
    assert builtin_metrics_provider("gatewayapi:v1") == "gatewayapi:v1"
    # Flagger's observer factory matches these by prefix
    assert builtin_metrics_provider("gatewayapi:v1:istio") == "gatewayapi:v1"
    assert builtin_metrics_provider("gatewayapi:v1beta1:contour") == "gatewayapi:v1beta1"
    assert builtin_metrics_provider("gloo:edge") == "gloo"
    assert router_module("smi:v1alpha4") is None
    assert router_module("linkerd2") is None


@pytest.mark.parametrize(
    ("canary_provider", "mesh_provider", "queries"),
    [
        (None, "istio", "istio"),  # the controller's default routes it
        ("nginx", "istio", "nginx"),
        ("smi:v1alpha3:linkerd", "kubernetes", "linkerd"),
        # Flagger's runBuiltinMetricChecks: on a Linkerd mesh, Linkerd's queries whatever routes
        ("nginx", "linkerd", "linkerd"),
        ("gatewayapi:v1", "smi:v1alpha3:linkerd", "linkerd"),
        (None, "linkerd", "linkerd"),
    ],
)
def test_builtin_queries_are_chosen_as_flaggers_scheduler_chooses_them(
    canary_provider: str | None, mesh_provider: str, queries: str
) -> None:
    assert builtin_queries_provider(canary_provider, mesh_provider) == queries


def test_the_engine_reads_capabilities_from_the_router() -> None:
    assert router_capabilities("istio").mirroring
    assert router_capabilities("gatewayapi:v1beta1").mirroring
    assert not router_capabilities("kubernetes").mirroring
    assert not router_capabilities("nginx").mirroring
    assert router_capabilities("contour").ab_testing
    assert not router_capabilities("linkerd").ab_testing
    assert router_capabilities("appmesh:v1beta2").ab_testing
    assert not router_capabilities("smi:v1alpha9").weighted  # not built: no more than a switch


def test_what_is_not_built_is_named() -> None:
    # an SMI version Flagger's spec.provider accepts as a variant, but no router serves
    canary = parse_canary(canary_body(provider="smi:v1alpha9"))
    (problem,) = not_built_problems(canary, "kubernetes")
    assert problem.startswith("spec.provider: provider 'smi:v1alpha9' is not built yet")
    with pytest.raises(NotSupportedError, match="'smi:v1alpha9' is not built yet"):
        router_for("smi:v1alpha9", InMemoryCluster())
    assert not_built_problems(parse_canary(canary_body(provider="istio")), "kubernetes") == []


def test_session_affinity_is_refused_where_the_router_has_none() -> None:
    body = canary_body(provider="nginx", ingressRef={"name": "podinfo"})
    body["spec"]["analysis"]["sessionAffinity"] = {"cookieName": "canary"}
    with pytest.raises(SpecError) as err:
        parse_canary(body)
    message = str(err.value)
    assert "spec.analysis.sessionAffinity: the nginx router cannot keep users" in message
    assert "istio" in message and "gatewayapi:v1" in message
    body["spec"]["provider"] = "istio"
    assert parse_canary(body).spec.effective_analysis.session_affinity is not None


LINKERD_DOC = (
    Path(__file__).resolve().parents[2] / "config/examples/flagger-docs/linkerd.yaml"
).read_text()

EXAMPLE = '''
"""A hypothetical router: the weights in one annotation of a ConfigMap-like object."""

from config import Canary, Capabilities, Problem, RouterRules
from traffic._registry import RouterModule
from traffic._types import Weights
from traffic.cluster import Kind
from traffic.routers._weighted_object import WeightedObjectRouter

SPLIT = Kind("example.dev", "v1", "splits", "Split")


class ExampleRouter(WeightedObjectRouter):
    kind = SPLIT

    def desired_spec(self, canary, weights):
        return {"primary": weights.primary, "canary": weights.canary}

    def read_weights(self, canary, body):
        spec = body.get("spec") or {}
        return self.weights_or_error(canary, spec.get("primary"), spec.get("canary"))


def _check(canary, analysis_key):
    if canary.spec.service.port == 1:
        yield Problem("spec.service.port", "the example router cannot use port 1")


ROUTER = RouterModule(
    names=("NAME",),
    rules=RouterRules(label="example", capabilities=Capabilities(), check=_check),
    build=lambda cluster, provider, options: ExampleRouter(
        cluster, selector_labels=options.selector_labels
    ),
    kinds=(SPLIT,),
    builtin_metrics=lambda provider: None,
)
'''


#: A provider name the Canary schema accepts (Flagger takes suffixed ``smi:`` variants) that no
#: router module serves: a real new backend adds its name to FLAGGER_PROVIDERS instead.
EXAMPLE_NAME = "smi:v1alpha9"


@pytest.fixture
def example_router(tmp_path: Path) -> Iterator[None]:
    """docs/adding-a-router.md's example, dropped in as a module of traffic.routers."""
    package = tmp_path / "extra"
    package.mkdir()
    (package / "example.py").write_text(textwrap.dedent(EXAMPLE).replace("NAME", EXAMPLE_NAME))
    traffic.routers.__path__.append(str(package))
    traffic._registry._modules.cache_clear()
    try:
        traffic._registry.load_routers()
        yield
    finally:
        traffic.routers.__path__.remove(str(package))
        config._routers._RULES.pop(EXAMPLE_NAME, None)
        traffic._registry._modules.cache_clear()
        traffic._registry.load_routers()


async def test_adding_a_router_is_adding_its_module(
    example_router: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from traffic_testkit import deployment

    from traffic import DeploymentWorkload, Routes, Weights

    assert EXAMPLE_NAME in supported_providers()
    # the loader runs its check and its capabilities; validate accepts it
    with pytest.raises(SpecError, match=r"spec\.service\.port: the example router cannot"):
        make_canary(provider=EXAMPLE_NAME, service={"port": 1})
    canary = make_canary(provider=EXAMPLE_NAME)
    manifest = tmp_path / "canary.yaml"
    manifest.write_text(LINKERD_DOC.replace("provider: linkerd", f"provider: {EXAMPLE_NAME}"))
    assert main(["validate", str(manifest)]) == 0
    # and it routes
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    router = router_for(EXAMPLE_NAME, cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(80, 20))
    assert await router.get_routes(canary) == Routes(Weights(80, 20))
