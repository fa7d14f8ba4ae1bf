"""``spec.service.portDiscovery``: the ports the generated Services expose besides the main one
must make a Service the API server accepts (validateServicePort and ValidateService: with more
than one port every name is unique, and no two ports share a (port, protocol))."""

from __future__ import annotations

from router_world import World
from traffic_testkit import deployment, make_canary, svc_ref

from traffic import router_for


async def test_a_discovered_port_never_repeats_the_main_ports_name_or_another_ports_number(
    world: World,
) -> None:
    # The main port is named "http" (portName's default) on 80, targeting 80; the container
    # calls its own 9898 "http" too, and a sidecar declares the metrics port the app declares.
    # Flagger appends all of them, and the API server refuses the Service (Duplicate value), so
    # the canary never initializes; the colliding discovered ports are left out instead.
    pod_spec = {
        "containers": [
            {
                "name": "podinfod",
                "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                "ports": [
                    {"name": "http", "containerPort": 9898},
                    {"name": "http-metrics", "containerPort": 9797},
                ],
            },
            {
                "name": "exporter",
                "image": "exporter:1.0",
                "ports": [{"name": "metrics", "containerPort": 9797}],
            },
        ]
    }
    world.seed(deployment(pod_spec=pod_spec))
    canary = make_canary(service={"port": 80, "portDiscovery": True})
    await router_for("kubernetes", world.cluster).initialize(canary)
    for name in ("podinfo-canary", "podinfo-primary"):
        svc = await world.must_read(svc_ref(name))
        assert svc["spec"]["ports"] == [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80},
            {"name": "http-metrics", "protocol": "TCP", "port": 9797, "targetPort": 9797},
        ]
