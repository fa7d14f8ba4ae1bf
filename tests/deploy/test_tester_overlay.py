"""config/deploy/tester: the load tester the seed's webhooks call (http://flagger-loadtester.test/).

Rendered with `kubectl kustomize` and checked offline like the base (tests/deploy/test_manifests.py,
whose helpers this reuses): valid Kubernetes objects, the Service name, namespace and port the
seed's URL needs, the controller's image, args the CLI accepts, and the same lock-down.
"""

from __future__ import annotations

import copy

import yaml

from .test_manifests import (
    DEPLOY,
    EXAMPLES,
    IMAGE,
    Doc,
    _dockerfile_user,
    _one,
    _rendered,
    schema_errors,
)

TESTER = DEPLOY / "tester"
NAME = "flagger-loadtester"
NAMESPACE = "test"


def _tester() -> list[Doc]:
    return copy.deepcopy(list(_rendered(TESTER)))


def _pod(docs: list[Doc]) -> Doc:
    spec: Doc = _one(docs, "Deployment", NAME)["spec"]["template"]["spec"]
    return spec


def _container(docs: list[Doc]) -> Doc:
    (container,) = _pod(docs)["containers"]
    return container


def test_overlay_renders_the_namespace_service_and_deployment() -> None:
    docs = _tester()
    got = sorted((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs)
    assert got == [
        ("Deployment", NAME, NAMESPACE),
        ("Namespace", NAMESPACE, None),
        ("Service", NAME, NAMESPACE),
    ]
    # A separate kustomization, like samples/: installing the controller does not install it.
    base = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert "tester" not in base["resources"]


def test_every_object_is_valid_kubernetes() -> None:
    errors = schema_errors(_tester())
    assert not errors, "\n".join(errors)


def test_the_service_answers_the_seeds_url_on_port_80() -> None:
    # url: http://flagger-loadtester.test/  ->  Service flagger-loadtester, namespace test, port 80
    docs = _tester()
    service = _one(docs, "Service", NAME)
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = _one(docs, "Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert _container(docs)["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_the_deployment_runs_the_controllers_image_as_loadtester() -> None:
    docs = _tester()
    deployment = _one(docs, "Deployment", NAME)
    assert deployment["spec"]["replicas"] == 1, "gate states live in memory: one replica"
    # Flagger's selector, so applying this over Flagger's load tester replaces it in place.
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": NAME}
    container = _container(docs)
    assert container["image"] == IMAGE
    assert container["args"] == ["loadtester"]
    assert "command" not in container, "the image's ENTRYPOINT is canary-engine"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][part].keys(), part


def test_the_args_are_accepted_by_the_cli() -> None:
    from engine.cli import build_parser

    args = build_parser().parse_args(_container(_tester())["args"])
    assert args.command == "loadtester"
    assert args.port == 8080
    assert args.allow_commands is False, "no shell for anyone who can reach the Service"


def test_the_deployment_is_locked_down() -> None:
    docs = _tester()
    pod = _pod(docs)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    sc = _container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("runAsUser", pod["securityContext"].get("runAsUser")) == _dockerfile_user()
    mounts = {m["mountPath"]: m["name"] for m in _container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_samples_hooks_run_on_this_tester_as_deployed() -> None:
    # The tester runs without --allow-commands: every command the bundled Canaries send it must
    # be a hey invocation it accepts, or the release fails its pre-rollout check and rolls back.
    from engine.cli.hey import is_hey, parse_hey

    url = f"http://{NAME}.{NAMESPACE}/"
    checked = 0
    for path in (DEPLOY / "samples" / "webhook-server.yaml", EXAMPLES / "webhook-server.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Canary":
                continue
            for hook in doc["spec"]["analysis"].get("webhooks") or ():
                if hook["url"] != url:
                    continue
                command = hook["metadata"]["cmd"]
                assert is_hey(command), f"{path.name} {hook['name']}: {command}"
                parse_hey(command, max_duration=600.0)
                checked += 1
    assert checked >= 4
