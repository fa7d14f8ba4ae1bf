"""Promotion in every strategy, as Flagger's runPromotionTrafficShift (issue 9, item 5).

``stepWeightPromotion`` steps the primary back in blue/green and A/B too; a router that cannot
hold a partial weight (ingress-nginx with an A/B match) does not keep the promotion stepping
forever as it does in Flagger.
"""

from __future__ import annotations

from config import Phase
from engine import Decision, decide
from tests.engine.test_machine import NOW, events, make_canary, observe, routes_set, run, status
from traffic import Weights

AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


def test_blue_green_promotion_steps_the_primary_back() -> None:
    c = make_canary(stepWeight=None, maxWeight=None, iterations=3, stepWeightPromotion=30)
    # Blue/green never writes canaryWeight (Q9): the first step starts from the routes.
    d = run(c, status(Phase.PROMOTING, iterations=4), observe(routes=(0, 100)))
    assert routes_set(d) == [Weights(30, 70)]
    assert d.status.phase is Phase.PROMOTING and d.status.canary_weight == 70
    assert events(d) == ["Advance podinfo.test primary weight 30"]
    d = run(c, d.status, observe(routes=(30, 70)))
    d = run(c, d.status, observe(routes=(60, 40)))
    assert routes_set(d) == [Weights(90, 10)]
    d = run(c, d.status, observe(routes=(90, 10)))
    assert routes_set(d) == [Weights(100, 0)] and d.status.phase is Phase.FINALISING


def test_ab_promotion_steps_the_matched_traffic_back() -> None:
    c = make_canary(
        stepWeight=None, maxWeight=None, iterations=2, match=AB_MATCH, stepWeightPromotion=50
    )
    d = run(c, status(Phase.PROMOTING, iterations=2), observe(routes=(0, 100)))
    assert routes_set(d) == [Weights(50, 50)] and d.status.phase is Phase.PROMOTING


def test_a_router_that_drops_the_step_finishes_the_promotion_at_once() -> None:
    c = make_canary(
        stepWeight=None, maxWeight=None, iterations=2, match=AB_MATCH, stepWeightPromotion=50
    )
    # The last step left the canary at 50, but the router reports it at 100 again.
    s = status(Phase.PROMOTING, iterations=2, canary_weight=50)
    d = decide(c, s, observe(routes=(0, 100)), now=NOW, provider="nginx")
    assert isinstance(d, Decision)
    assert routes_set(d) == [Weights(100, 0)] and d.status.phase is Phase.FINALISING
    assert events(d) == [
        "Routing all traffic to primary: the nginx router reports canary weight 100 after the "
        "promotion step to 50"
    ]


def test_the_canary_strategy_starts_promoting_from_the_weight_it_reached() -> None:
    # canaryWeight is kept when Promoting starts: equal to the routes, so no shortcut.
    c = make_canary(stepWeightPromotion=10)
    d = run(c, status(Phase.PROMOTING, canary_weight=30), observe(routes=(70, 30)))
    assert routes_set(d) == [Weights(80, 20)] and d.status.canary_weight == 20
