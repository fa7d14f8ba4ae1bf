"""CanaryMemo: a tick's parse of the Canary it read, validated again only when the spec changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import config._canary_memo as memo_module
from config import CanaryMemo, SpecError, parse_canary


def _body(**spec_changes: Any) -> dict[str, Any]:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "maxWeight": 50,
        "stepWeight": 10,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    }
    analysis.update(spec_changes)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u-1", "resourceVersion": "1"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": analysis,
        },
    }


def _written(body: dict[str, Any], version: str, **status: Any) -> dict[str, Any]:
    """``body`` as a status write leaves it: a new status and resourceVersion."""
    new = copy.deepcopy(body)
    new["metadata"]["resourceVersion"] = version
    new["status"] = status
    return new


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies the memo validated in full."""
    seen: list[dict[str, Any]] = []

    def counting(body: dict[str, Any], **kwargs: Any) -> Any:
        seen.append(body)
        return parse_canary(body, **kwargs)

    monkeypatch.setattr(memo_module, "parse_canary", counting)
    return seen


def test_a_status_write_reuses_the_parse_and_gives_what_a_full_parse_gives(
    parses: list[dict[str, Any]],
) -> None:
    memo = CanaryMemo()
    first = _body()
    memo.parse(first, default_provider="kubernetes")
    later = _written(first, "7", phase="Progressing", canaryWeight=20)

    got = memo.parse(later, default_provider="kubernetes")

    assert len(parses) == 1
    assert got == parse_canary(later, default_provider="kubernetes")
    assert got.status == {"phase": "Progressing", "canaryWeight": 20}
    assert got.metadata.model_extra == {"uid": "u-1", "resourceVersion": "7"}


def test_a_changed_spec_is_validated_again(parses: list[dict[str, Any]]) -> None:
    memo = CanaryMemo()
    memo.parse(_body())

    got = memo.parse(_written(_body(stepWeight=25), "2"))

    assert len(parses) == 2
    assert got.spec.effective_analysis.step_weight == 25


def test_a_changed_spec_that_is_invalid_raises_every_time_until_fixed() -> None:
    memo = CanaryMemo()
    memo.parse(_body())
    broken = _body(stepWeight=150)
    for _ in range(2):
        with pytest.raises(SpecError, match="stepWeight"):
            memo.parse(broken)
    assert memo.parse(_body(stepWeight=20)).spec.effective_analysis.step_weight == 20


def test_a_status_that_is_not_a_mapping_is_refused_as_a_full_parse_refuses_it() -> None:
    memo = CanaryMemo()
    memo.parse(_body())
    bad = _body()
    bad["status"] = "Progressing"
    with pytest.raises(SpecError, match="status"):
        memo.parse(bad)


def test_a_body_changed_in_place_after_its_parse_is_not_taken_for_the_old_one() -> None:
    memo = CanaryMemo()
    body = _body()
    memo.parse(body)
    body["spec"]["analysis"]["stepWeight"] = 30  # the caller reuses its dict

    assert memo.parse(body).spec.effective_analysis.step_weight == 30


def test_another_default_provider_is_checked_again(parses: list[dict[str, Any]]) -> None:
    memo = CanaryMemo()
    body = _body()
    memo.parse(body, default_provider="kubernetes")
    memo.parse(body, default_provider="istio")

    assert len(parses) == 2


def test_true_and_1_are_different_specs_though_python_takes_them_for_equal() -> None:
    memo = CanaryMemo()
    body = _body()
    body["spec"]["skipAnalysis"] = True
    assert memo.parse(body).spec.skip_analysis is True
    changed = _written(body, "2")
    changed["spec"]["skipAnalysis"] = 1  # the CRD refuses it; the strict model too
    with pytest.raises(SpecError, match="skipAnalysis"):
        memo.parse(changed)

    free_form = _body()
    free_form["spec"]["service"]["corsPolicy"] = {"allowCredentials": 1}
    memo.parse(free_form)
    as_bool = _written(free_form, "3")
    as_bool["spec"]["service"]["corsPolicy"] = {"allowCredentials": True}
    cors = memo.parse(as_bool).spec.service
    assert cors is not None and cors.cors_policy == {"allowCredentials": True}
    assert cors.cors_policy is not None and cors.cors_policy["allowCredentials"] is True


def test_a_body_without_a_resource_version_parses_as_a_full_parse_does() -> None:
    memo = CanaryMemo()
    memo.parse(_body())
    bare = _body()
    del bare["metadata"]["resourceVersion"]

    assert memo.parse(bare) == parse_canary(bare)


def test_the_status_handed_back_is_the_canarys_own_plain_mapping() -> None:
    memo = CanaryMemo()
    memo.parse(_body())
    later = _written(_body(), "5", phase="Progressing")

    status = memo.parse(later).status
    assert type(status) is dict and status == {"phase": "Progressing"}
    assert status is not later["status"]


def test_a_parse_does_not_change_with_the_body_it_came_from() -> None:
    memo = CanaryMemo()
    body = _body()
    body["metadata"]["ownerReferences"] = [{"name": "x"}]
    memo.parse(body)
    body["metadata"]["ownerReferences"][0]["name"] = "changed"  # the caller reuses its dict

    unchanged = _written(_body(), "2")
    unchanged["metadata"]["ownerReferences"] = [{"name": "x"}]
    extra = memo.parse(unchanged).metadata.model_extra
    assert extra is not None and extra["ownerReferences"] == [{"name": "x"}]
