"""``canary-engine run --kubeconfig-service-mesh``: the mesh's objects on another cluster.

Two Kubernetes API test servers over HTTP (``tests/kubeapi.py``): the main one holds the Canary,
its Deployments and Services (the controller of ``test_controller_kube.py``, with its fake
Prometheus and virtual time), the mesh one only what the Istio router writes (VirtualService and
DestinationRules), as with Istio's primary-remote and Flagger's ``-kubeconfig-service-mesh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_controller_kube import CANARIES, NAME, NS, V2, World, alive, start, world
from tests.kubeapi import serve_kube_api
from traffic.cluster._mesh import OWNERS_ANNOTATION

__all__ = ["world"]  # the fixture, shared with test_controller_kube

pytestmark = pytest.mark.timeout(60)

VIRTUAL_SERVICES = "virtualservices.networking.istio.io"
DESTINATION_RULES = "destinationrules.networking.istio.io"
SECRET_TOKEN = "s3cr3t-mesh-token-do-not-print"


async def test_an_istio_canarys_routing_is_written_and_stepped_on_the_mesh_cluster(
    world: World, tmp_path: Path
) -> None:
    w = world
    w.seed(metrics=[])  # the weights are the point here, not the istio queries
    canary = w.api.store.get(CANARIES, NS, NAME)
    assert canary is not None
    canary["spec"]["provider"] = "istio"
    w.api.store.put(canary)
    async with serve_kube_api() as mesh:
        weights: list[int] = []
        commit = mesh.store._commit

        def observed(group: str, plural: str, key: tuple[str, str], body: Any, type_: str) -> None:
            commit(group, plural, key, body, type_)
            if plural == "virtualservices":
                route = body["spec"]["http"][0]["route"]
                weight = next(
                    r["weight"] for r in route if r["destination"]["host"] == f"{NAME}-canary"
                )
                if not weights or weights[-1] != weight:
                    weights.append(weight)

        mesh.store._commit = observed  # type: ignore[method-assign]
        path = mesh.write_kubeconfig(tmp_path / "mesh-kubeconfig")
        run = await start(w, kubeconfig_service_mesh=str(path))
        try:
            await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
            await w.set_image(NAME, V2)
            await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
        finally:
            assert await run.shutdown() == 0

        # the canary's weight (to the -canary host), stepped on the mesh cluster and back
        assert weights == [0, 15, 30, 0], weights
        vs = mesh.store.get(VIRTUAL_SERVICES, NS, NAME)
        assert vs is not None
        rules = {r["metadata"]["name"] for r in mesh.store.objects(DESTINATION_RULES, NS)}
        assert rules == {f"{NAME}-primary", f"{NAME}-canary"}
        # no owner reference the mesh cluster's garbage collector would act on (no such Canary)
        assert "ownerReferences" not in vs["metadata"]
        assert json.loads(vs["metadata"]["annotations"][OWNERS_ANNOTATION])[0]["name"] == NAME
        # the mesh cluster was asked about its Istio objects only: no Service, no Deployment
        groups = {r.group for r in mesh.log if r.path.startswith(("/api/", "/apis/"))}
        assert groups == {"networking.istio.io"}
        assert mesh.store.objects("services") == []
        assert mesh.store.objects("deployments.apps") == []

    # the main cluster: the Services and Deployments, and no Istio object
    for name in (NAME, f"{NAME}-primary", f"{NAME}-canary"):
        assert w.api.store.get("services", NS, name) is not None, name
    assert (
        w.deployment(f"{NAME}-primary")["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    )
    assert w.api.store.objects(VIRTUAL_SERVICES) == []
    assert w.api.store.objects(DESTINATION_RULES) == []


def _run(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> Any:
    """``canary-engine run`` as a process, against a main kubeconfig it never gets to use (its
    server does not listen): a wrong mesh kubeconfig stops it first."""
    main = tmp_path / "kubeconfig"
    main.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--kubeconfig", str(main), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


#: kubeconfigs that do not load, each with a token that must not be printed
BAD_KUBECONFIGS = {
    "missing": None,
    "not a mapping": f"- token: {SECRET_TOKEN}\n",
    "no current context": json.dumps(
        {
            "apiVersion": "v1",
            "clusters": [{"name": "c", "cluster": {"server": "https://mesh.example:6443"}}],
            "users": [{"name": "u", "user": {"token": SECRET_TOKEN}}],
        }
    ),
    "not YAML": f"users: [{{user: {{token: {SECRET_TOKEN}}}\n  - : ][",
}


@pytest.mark.parametrize("content", list(BAD_KUBECONFIGS.values()), ids=list(BAD_KUBECONFIGS))
@pytest.mark.parametrize("form", ["option", "flagger", "environment"])
def test_a_mesh_kubeconfig_that_does_not_load_stops_the_start_with_one_line(
    tmp_path: Path, content: str | None, form: str
) -> None:
    bad = tmp_path / "mesh-kubeconfig"
    if content is not None:
        bad.write_text(content)
    if form == "option":
        done = _run(tmp_path, ["--kubeconfig-service-mesh", str(bad)])
    elif form == "flagger":  # Flagger's chart writes it Go style, one dash
        done = _run(tmp_path, [f"-kubeconfig-service-mesh={bad}"])
    else:
        done = _run(tmp_path, [], {"CANARY_ENGINE_KUBECONFIG_SERVICE_MESH": str(bad)})
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("--kubeconfig-service-mesh: "), line
    assert str(bad) in line
    assert "give the kubeconfig of the service mesh's control plane cluster" in line
    assert SECRET_TOKEN not in done.stderr and "Traceback" not in done.stderr
