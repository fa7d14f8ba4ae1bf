"""Where trying Flagger's own examples showed a difference (issue 9, item 5), through the CLI.

Each test runs ``canary-engine simulate`` or ``validate`` as a user would on a Canary shaped like
Flagger's examples and checks what the user sees: the exit status, the events, the weights routed
on each tick, and the message of a refusal.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main
from tests.e2e.test_simulate import HEALTHY, Sim, all_events, canary_yaml, steady


@pytest.fixture
def sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Sim:
    return Sim(tmp_path, capsys)


def promoting_primary_weights(doc: dict[str, Any]) -> list[int]:
    """The primary weight routed on each tick that ends in Promoting or Finalising."""
    return [t["primaryWeight"] for t in doc["ticks"] if t["phase"] in ("Promoting", "Finalising")]


def blue_green(**extra: Any) -> dict[str, Any]:
    analysis = {k: v for k, v in HEALTHY.items() if k not in ("stepWeight", "maxWeight")}
    return {**copy.deepcopy(analysis), "iterations": 2, **extra}


AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


# -- skipAnalysis ------------------------------------------------------------------------------


def test_skip_analysis_announces_the_copy_to_the_primary_like_flagger(sim: Sim) -> None:
    code, doc, _ = sim.run(canary_yaml(HEALTHY, skipAnalysis=True), steady(rate=10))
    assert code == 0 and doc["result"] == "promoted"
    events = all_events(doc)
    copying = "Copying webhook-server.staging template spec to webhook-server-primary.staging"
    done = "Promotion completed! Canary analysis was skipped for webhook-server.staging"
    assert copying in events and done in events
    assert events.index(copying) < events.index(done)  # Flagger's order: copy, then done


def test_skip_analysis_runs_the_post_rollout_hooks_before_completing(sim: Sim) -> None:
    # flagger-behaviour.md 2.4 step 22 and fluxcd/flagger#1918: a skipped analysis still calls
    # the post-rollout webhooks (phase Succeeded), then says the promotion completed.
    hooks = [{"name": "notify", "type": "post-rollout", "url": "http://ci.example/"}]
    code, doc, _ = sim.run(
        canary_yaml({**HEALTHY, "webhooks": hooks}, skipAnalysis=True), steady(rate=10)
    )
    assert code == 0 and doc["result"] == "promoted"
    events = all_events(doc)
    passed = "Post-rollout check notify passed"
    done = "Promotion completed! Canary analysis was skipped for webhook-server.staging"
    assert events.count(passed) == 1
    assert events.index(passed) < events.index(done)


# -- stepWeightPromotion for blue/green and A/B ------------------------------------------------


def test_blue_green_with_step_weight_promotion_steps_the_primary_back(sim: Sim) -> None:
    code, doc, err = sim.run(canary_yaml(blue_green(stepWeightPromotion=40)), steady())
    assert code == 0, err
    # All traffic went to the canary after the iterations, then comes back 40 points a tick.
    assert promoting_primary_weights(doc) == [0, 40, 80, 100]
    events = all_events(doc)
    for weight in (40, 80, 100):
        assert f"Advance webhook-server.staging primary weight {weight}" in events
    assert "Routing all traffic to primary" not in events


def test_ab_testing_with_step_weight_promotion_steps_the_matched_traffic_back(sim: Sim) -> None:
    analysis = blue_green(match=AB_MATCH, stepWeightPromotion=50)
    code, doc, err = sim.run(canary_yaml(analysis), steady())
    assert code == 0, err
    assert promoting_primary_weights(doc) == [0, 50, 100]
    assert "Advance webhook-server.staging primary weight 50" in all_events(doc)


def test_blue_green_without_step_weight_promotion_still_switches_back_at_once(sim: Sim) -> None:
    code, doc, _ = sim.run(canary_yaml(blue_green()), steady())
    assert code == 0
    assert promoting_primary_weights(doc) == [0, 100]
    assert "Routing all traffic to primary" in all_events(doc)


def test_nginx_ab_promotion_finishes_where_flagger_steps_forever(sim: Sim, tmp_path: Path) -> None:
    """ingress-nginx routes header-matched traffic all or nothing: after a promotion step the
    router reports the canary at 100 again. Flagger steps from that on every tick and never
    finalises; canary-engine routes everything back to the primary and finishes."""
    canary = canary_yaml(
        blue_green(match=AB_MATCH, stepWeightPromotion=50),
        provider="nginx",
        ingressRef={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"},
    )
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "staging"},
        "spec": {
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "webhook-server", "port": {"number": 80}}
                                },
                            }
                        ]
                    },
                }
            ]
        },
    }
    path = tmp_path / "nginx-ab.yaml"
    path.write_text(yaml.safe_dump_all([canary, ingress]))
    code, doc, err = sim.run(path, steady())
    assert code == 0, err
    events = all_events(doc)
    assert "Advance webhook-server.staging primary weight 50" in events
    assert (
        "Routing all traffic to primary: the nginx router reports canary weight 100 after the "
        "promotion step to 50" in events
    )
    assert promoting_primary_weights(doc)[-1] == 100


def test_validate_accepts_step_weight_promotion_for_every_strategy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, analysis in (
        ("bg", blue_green(stepWeightPromotion=10)),
        ("ab", blue_green(match=AB_MATCH, stepWeightPromotion=10)),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(canary_yaml(analysis)))
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
        assert f"{path}: valid (1 Canary" in capsys.readouterr().out


# -- refusals that name the field and the way out -----------------------------------------------


def validate(path: Path, body: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    path.write_text(yaml.safe_dump(body))
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


#: Flagger's Knative example (docs/gitbook/tutorials/knative-progressive-delivery.md): no
#: spec.service, a Knative Service as the target.
KNATIVE = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "provider": "knative",
        "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "analysis": {
            "interval": "15s",
            "threshold": 15,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
            ],
        },
    },
}


def test_knative_canary_validates_without_spec_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Knative Services are driven now (traffic/_knative.py, tests/traffic/test_router_knative.py)
    path = tmp_path / "knative.yaml"
    path.write_text(yaml.safe_dump(KNATIVE))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_knative_provider_on_a_deployment_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = canary_yaml(HEALTHY, provider="knative")
    err = validate(tmp_path / "knative-deploy.yaml", body, capsys)
    assert "spec.targetRef: provider knative needs a Knative Service target" in err
    assert len(err.strip().splitlines()) == 1, err


def test_simulate_promotes_a_knative_canary(sim: Sim, tmp_path: Path) -> None:
    path = tmp_path / "knative.yaml"
    path.write_text(yaml.safe_dump(KNATIVE))
    code, doc, err = sim.run(path, steady())
    assert (code, doc["result"]) == (0, "promoted"), err


@pytest.mark.parametrize("weights", [[10, 10, 50], [20, 10, 50]])
def test_step_weights_that_would_stall_flagger_are_refused(
    weights: list[int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = {**{k: v for k, v in HEALTHY.items() if k != "stepWeight"}, "stepWeights": weights}
    err = validate(tmp_path / "steps.yaml", canary_yaml(analysis), capsys)
    assert f"spec.analysis.stepWeights: must be strictly ascending, got {weights}" in err
    assert "never promoted" in err and "Remove the repeated or smaller weights" in err


def test_metric_with_nothing_to_query_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Flagger 0.x named its builtin checks after the Istio series; Flagger 1.x skips such a
    # metric silently, so a release would be promoted without the check its author meant.
    metrics = [{"name": "istio_requests_total", "threshold": 99, "interval": "1m"}]
    analysis = {**HEALTHY, "metrics": metrics}
    err = validate(tmp_path / "old-metric.yaml", canary_yaml(analysis), capsys)
    assert "spec.analysis.metrics[0]: metric 'istio_requests_total' is not builtin" in err
    assert "Flagger counts it as a failed check on every tick" in err
    assert "Add a templateRef or query" in err


# -- autoscalerRef -------------------------------------------------------------------------------

HPA_REF = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web-hpa"}


def test_simulate_with_an_hpa_runs_without_the_hpa_in_the_file(sim: Sim) -> None:
    code, doc, err = sim.run(canary_yaml(HEALTHY, autoscalerRef=HPA_REF), steady())
    assert code == 0, err
    assert doc["result"] == "promoted"
    assert (
        "Copying webhook-server.staging template spec to webhook-server-primary.staging"
        in all_events(doc)
    )


def test_keda_scaled_object_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # KEDA ScaledObjects are driven now (tests/traffic/test_autoscaler_keda.py)
    ref = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web-so"}
    path = tmp_path / "keda.yaml"
    path.write_text(yaml.safe_dump(canary_yaml(HEALTHY, autoscalerRef=ref)))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
