"""traffic.cluster's read-only bodies: every change refused at every depth, copies plain all the
way down, and re-freezing shares what is already read-only (what the caches rely on)."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from traffic.cluster import json_copy
from traffic.cluster._json import read_only


def _body() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "labels": {"app": "web"}, "managedFields": [{"m": 1}]},
        "spec": {"ports": [{"port": 80}, {"port": 443}], "selector": {"app": "web"}},
    }


CHANGES: dict[str, Callable[[Any], object]] = {
    "set a key": lambda b: b.__setitem__("x", 1),
    "set a nested key": lambda b: b["spec"]["selector"].__setitem__("x", 1),
    "delete a key": lambda b: b.__delitem__("spec"),
    "merge with |=": lambda b: b.__ior__({"x": 1}),
    "update": lambda b: b["metadata"].update(name="other"),
    "setdefault": lambda b: b.setdefault("x", 1),
    "pop a key": lambda b: b.pop("spec"),
    "popitem": lambda b: b["metadata"].popitem(),
    "clear a dict": lambda b: b["metadata"]["labels"].clear(),
    "append": lambda b: b["spec"]["ports"].append({"port": 8080}),
    "extend": lambda b: b["spec"]["ports"].extend([{"port": 8080}]),
    "+=": lambda b: b["spec"]["ports"].__iadd__([{"port": 8080}]),
    "*=": lambda b: b["spec"]["ports"].__imul__(2),
    "insert": lambda b: b["spec"]["ports"].insert(0, {"port": 8080}),
    "set an item": lambda b: b["spec"]["ports"].__setitem__(0, {}),
    "delete an item": lambda b: b["spec"]["ports"].__delitem__(0),
    "pop an item": lambda b: b["spec"]["ports"].pop(),
    "remove": lambda b: b["spec"]["ports"].remove({"port": 80}),
    "sort": lambda b: b["spec"]["ports"].sort(key=json.dumps),
    "reverse": lambda b: b["spec"]["ports"].reverse(),
    "clear a list": lambda b: b["spec"]["ports"].clear(),
    "change an item of a list": lambda b: b["spec"]["ports"][0].__setitem__("port", 1),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_is_refused_with_the_fix(change: Callable[[Any], object]) -> None:
    body = read_only(_body())
    with pytest.raises(TypeError, match=r"read-only: change a copy \(json_copy\)"):
        change(body)
    assert body == _body()


def _plain_all_the_way_down(value: Any) -> bool:
    if isinstance(value, dict):
        return type(value) is dict and all(_plain_all_the_way_down(v) for v in value.values())
    if isinstance(value, list):
        return type(value) is list and all(_plain_all_the_way_down(v) for v in value)
    return True


@pytest.mark.parametrize(
    "plain",
    [json_copy, copy.deepcopy, lambda b: pickle.loads(pickle.dumps(b))],
    ids=["json_copy", "deepcopy", "pickle"],
)
def test_a_copy_is_the_callers_own_at_every_depth(plain: Callable[[Any], Any]) -> None:
    body = read_only(_body())
    mine = plain(body)
    assert mine == body and _plain_all_the_way_down(mine)
    mine["spec"]["ports"].append({"port": 8080})  # the caller's to change
    assert body == _body()


def test_a_shallow_copy_is_plain_at_the_top_only() -> None:
    body = read_only(_body())
    for top in (copy.copy(body), dict(body)):
        assert type(top) is dict
        top["x"] = 1
        with pytest.raises(TypeError):
            top["spec"]["selector"]["x"] = 1
    assert type(copy.copy(body["spec"]["ports"])) is list


def test_refreezing_shares_what_is_already_read_only() -> None:
    body = read_only(_body())
    assert read_only(body) is body
    # a cache dropping managedFields copies the new top level and metadata, nothing else
    meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    stripped = read_only({**body, "metadata": meta})
    assert stripped["spec"] is body["spec"]
    assert stripped["metadata"]["labels"] is body["metadata"]["labels"]
    with pytest.raises(TypeError):
        stripped["metadata"]["name"] = "other"
