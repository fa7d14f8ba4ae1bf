"""``analysis.match`` with ``stepWeight``/``stepWeights`` and no ``iterations``: Flagger's canary
strategy (DeploymentStrategy() is "canary": A/B testing needs iterations > 0), whose steps the
routers that match requests (Istio, the Gateway API, Contour, Gloo, App Mesh) put on the matching
requests only. The loader accepts it there and refuses it, naming the router and the fix, where
the steps could not split only the matching requests."""

from __future__ import annotations

from typing import Any

import pytest

import traffic  # noqa: F401  (the router modules register the loader's provider rules)
from config import PRESETS, SpecError, Strategy, apply_preset, parse_canary

MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]
#: what each provider needs besides the match (Flagger's runtime requirements)
NEEDS: dict[str, dict[str, Any]] = {
    "nginx": {
        "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
    },
    "skipper": {
        "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
    },
    "apisix": {
        "routeRef": {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "p"}
    },
}
WEIGHTED = ["istio", "gatewayapi:v1", "gatewayapi:v1beta1", "contour", "gloo", "appmesh:v1beta2"]


def canary(provider: str | None = "istio", **analysis: Any) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider and provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "istio-ingress"}]
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": service,
        "analysis": {
            "interval": "1m",
            "threshold": 5,
            "maxWeight": 50,
            "stepWeight": 10,
            "match": MATCH,
            **analysis,
        },
        **NEEDS.get(provider or "", {}),
    }
    if provider is not None:
        spec["provider"] = provider
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": spec,
    }


def problems(body: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_canary(body, **kw)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("provider", WEIGHTED)
def test_match_with_step_weight_is_the_canary_strategy_where_the_router_splits_matches(
    provider: str,
) -> None:
    analysis = parse_canary(canary(provider)).spec.effective_analysis
    assert analysis.strategy is Strategy.CANARY
    assert (analysis.step_weight, analysis.effective_max_weight) == (10, 50)
    assert analysis.match == MATCH


def test_step_weights_too() -> None:
    body = canary("istio", stepWeight=None, stepWeights=[5, 20, 50])
    del body["spec"]["analysis"]["stepWeight"]
    analysis = parse_canary(body).spec.effective_analysis
    assert analysis.strategy is Strategy.CANARY
    assert analysis.next_step_weight(0) == 5


def test_app_mesh_v1beta1_too() -> None:
    body = canary("appmesh")
    body["spec"]["service"]["meshName"] = "global"
    assert parse_canary(body).spec.effective_analysis.strategy is Strategy.CANARY


def test_nginx_is_refused_because_it_routes_matches_all_or_nothing() -> None:
    (found,) = problems(canary("nginx"))
    assert found.startswith("spec.analysis.match: the nginx router sends the matching requests")
    assert "all or nothing" in found and "Set iterations for A/B testing" in found
    assert "promoted after the next analysis" in found  # what Flagger would do instead
    assert "istio" in found and "nginx," not in found  # the routers that can


@pytest.mark.parametrize("provider", ["linkerd", "traefik", "apisix", "skipper", "kubernetes"])
def test_a_router_that_cannot_match_is_named_with_the_routers_that_can(provider: str) -> None:
    found = [p for p in problems(canary(provider)) if p.startswith("spec.analysis.match")]
    assert len(found) == 1
    assert "cannot route by header or cookie, so it cannot split only the matching" in found[0]
    assert "(Flagger ignores match there)" in found[0]
    assert "gatewayapi:v1" in found[0] and "nginx" not in found[0]


def test_without_a_provider_the_controllers_default_router_decides() -> None:
    # validate does not know the controller's --mesh-provider: accepted, as A/B testing is
    parse_canary(canary(None))
    # the controller (and simulate) parse with it: istio splits the matches, kubernetes cannot
    parse_canary(canary(None), default_provider="istio")
    with pytest.raises(SpecError) as caught:
        parse_canary(canary(None), default_provider="kubernetes")
    (found,) = [str(p) for p in caught.value.problems]
    assert found.startswith("spec.analysis.match: the kubernetes router cannot route by header")
    assert "istio" in found


def test_the_default_routers_own_checks_apply_too() -> None:
    # An Istio TCP service routed by the controller's default (no spec.provider) is refused as it
    # is with provider: istio, once the caller knows the default.
    body = canary(None)
    body["spec"]["service"]["appProtocol"] = "tcp"
    parse_canary(body)  # validate does not know the controller's default
    with pytest.raises(SpecError) as caught:
        parse_canary(body, default_provider="istio")
    (found,) = [str(p) for p in caught.value.problems]
    assert found.startswith("spec.analysis.match: a TCP service (service.appProtocol: tcp)")


def test_mirror_beside_it_is_refused_it_would_never_leave_weight_zero() -> None:
    (found,) = problems(canary("istio", mirror=True))
    assert found.startswith("spec.analysis.mirror: cannot be combined with match and stepWeight")
    assert "never leave weight 0" in found


@pytest.mark.parametrize("provider", ["istio", "gatewayapi:v1"])
def test_session_affinity_beside_it_is_refused(provider: str) -> None:
    (found,) = problems(canary(provider, sessionAffinity={"cookieName": "canary"}))
    assert found.startswith("spec.analysis.sessionAffinity: cannot be combined with match")


def test_an_istio_tcp_service_cannot_split_matches() -> None:
    body = canary("istio")
    body["spec"]["service"]["appProtocol"] = "tcp"
    (found,) = problems(body)
    assert found.startswith("spec.analysis.match: a TCP service (service.appProtocol: tcp)")


@pytest.mark.parametrize(
    ("provider", "match", "router"),
    [
        ("gloo", [{"uri": {"prefix": "/api"}}], "gloo"),
        ("appmesh:v1beta2", [{"uri": {"prefix": "/api"}}], "App Mesh"),
        ("appmesh:v1beta2", [{"method": {"exact": "POST"}}], "App Mesh"),
    ],
)
def test_a_condition_the_router_cannot_use_would_step_every_request(
    provider: str, match: list[dict[str, Any]], router: str
) -> None:
    (found,) = problems(canary(provider, match=match))
    assert found.startswith(f"spec.analysis.match[0]: the {router} router matches requests by")
    assert "would match every request" in found


def test_gloo_matches_a_method() -> None:
    body = canary("gloo", match=[{"method": {"exact": "POST"}}])
    assert parse_canary(body).spec.effective_analysis.strategy is Strategy.CANARY


def test_ab_testing_is_unchanged() -> None:
    body = canary("istio", iterations=10)
    for key in ("stepWeight", "maxWeight"):
        del body["spec"]["analysis"][key]
    assert parse_canary(body).spec.effective_analysis.strategy is Strategy.AB_TESTING
    body["spec"]["provider"] = "linkerd"
    (found,) = problems(body)
    assert found.startswith(
        "spec.analysis.match: A/B testing needs a router that matches headers or cookies; the "
        "SMI (linkerd, osm) router cannot route by header or cookie"
    )
    assert "nginx" in found  # A/B testing works there
    body["spec"]["provider"] = "nginx"
    body["spec"].update(NEEDS["nginx"])
    assert parse_canary(body).spec.effective_analysis.strategy is Strategy.AB_TESTING


def test_a_match_without_any_strategy_still_asks_for_iterations() -> None:
    body = canary("istio")
    del body["spec"]["analysis"]["stepWeight"]
    assert "spec.analysis.iterations: A/B testing (match) needs iterations > 0" in problems(body)


def test_a_preset_does_not_turn_an_ab_test_missing_iterations_into_weighted_matches() -> None:
    body = canary("istio")
    for key in ("stepWeight", "maxWeight"):
        del body["spec"]["analysis"][key]
    merged = apply_preset(body, PRESETS["staging"])
    assert "stepWeight" not in merged["spec"]["analysis"]
    found = problems(body, preset="staging")
    assert "spec.analysis.iterations: A/B testing (match) needs iterations > 0" in found
    # a Canary that writes its step keeps it, and the preset caps it as usual
    body["spec"]["analysis"]["stepWeight"] = 5
    analysis = parse_canary(body, preset="staging").spec.effective_analysis
    assert (analysis.strategy, analysis.effective_max_weight) == (Strategy.CANARY, 30)


def test_a_sweep_checks_each_setting_against_its_mesh_provider() -> None:
    # sweep's batch replay used to rank a setting that simulate and the controller refuse.
    from engine.cli.grid import Setting, apply_setting

    setting = Setting("s1", {"analysis.threshold": 2})
    apply_setting(canary(None), setting, mesh_provider="istio")
    with pytest.raises(SpecError, match="the kubernetes router cannot route by header"):
        apply_setting(canary(None), setting, mesh_provider="kubernetes")


def test_a_default_router_is_checked_as_the_provider_it_is() -> None:
    # Flagger's App Mesh install sets meshProvider=appmesh:v1beta2 and leaves spec.provider out:
    # the v1beta1 check (meshName required) must not apply to those Canaries.
    body = canary(None)
    del body["spec"]["analysis"]["match"]
    parse_canary(body, default_provider="appmesh:v1beta2")
    with pytest.raises(SpecError, match="meshName"):
        parse_canary(body, default_provider="appmesh")


@pytest.mark.parametrize("provider", [*WEIGHTED, "nginx"])
@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (
            [{"headers": {"x-canary": "insider"}}],
            "spec.analysis.match: item 0: headers.x-canary must be a mapping with one of exact, "
            "prefix, suffix, regex (a string), got 'insider' (e.g. {exact: 'insider'})",
        ),
        (
            [{"headers": ["x-canary"]}],
            "spec.analysis.match: item 0: headers must be a mapping of names to matches",
        ),
        ([{"headers": {"x": {"exact": 1}}}], "headers.x must be a mapping with one of exact"),
        ([{"uri": {"prefix": "/a", "exact": "/b"}}], "item 0: uri must be a mapping with one"),
        ([{"sourceLabels": {"app": 1}}], "sourceLabels must be a mapping of label names"),
    ],
)
def test_a_match_the_routers_could_not_read_is_refused_with_the_fix(
    provider: str, match: list[dict[str, Any]], expected: str
) -> None:
    # a header written as a plain string crashed contour's check, and the gloo, Gateway API,
    # App Mesh and nginx routers at their first tick; Istio took it and matched nothing
    analysis: dict[str, Any] = {"match": match}
    if provider == "nginx":
        analysis.update(iterations=10, stepWeight=None, maxWeight=None)
    found = problems(canary(provider, **analysis))
    assert any(expected in p for p in found), found


def test_a_header_named_alone_matches_its_presence() -> None:
    match = [{"headers": {"x-canary": {}}}]  # Istio: the header's presence
    assert parse_canary(canary("istio", match=match)).spec.effective_analysis.match == match


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        ({"attempts": "three"}, "attempts must be a whole number, got 'three'"),
        ({"attempts": True}, "attempts must be a whole number, got True"),
        ({"attempts": 3, "perTryTimeout": 5}, "perTryTimeout must be a string, got 5"),
    ],
)
def test_service_retries_are_typed(retries: dict[str, Any], expected: str) -> None:
    body = canary("contour")
    body["spec"]["service"]["retries"] = retries
    assert any(f"spec.service.retries: {expected}" in p for p in problems(body)), problems(body)
