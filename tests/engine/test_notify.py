"""Flagger's alert routing: fields, global notifier vs per-canary AlertProviders, severity routing,
Secret address/token, failures logged and skipped; and the CLI's notifier options."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

import engine.shell.notify as notify
from config import Alert as AlertEntry
from config import Canary, parse_canary
from engine import Alert
from engine.shell.alerts import AlertField, HttpAlertSender, open_alert_sender
from engine.shell.notify import (
    AlertRouter,
    NotifyOptions,
    alert_fields,
    entry_receives,
    global_target,
)
from traffic import ALERT_PROVIDER, InMemoryCluster, ObjectRef
from traffic.cluster import json_copy

NS = "test"
SLACK = "https://hooks.slack.com/services/T/B/global"
TEAMS = "https://outlook.office.com/webhook/global"


def canary(*, alerts: list[dict[str, Any]] | None = None, **analysis: Any) -> Canary:
    spec_analysis: dict[str, Any] = {"interval": "1m", "threshold": 5, **analysis}
    if (
        "stepWeight" not in analysis
        and "stepWeights" not in analysis
        and "iterations" not in analysis
    ):
        spec_analysis.update(stepWeight=10, maxWeight=50)
    if alerts is not None:
        spec_analysis["alerts"] = alerts
    return parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {
                "provider": "istio",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": spec_analysis,
            },
        }
    )


def provider(name: str, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def secret(name: str, namespace: str = NS, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def entry(name: str, severity: str = "", namespace: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name}
    if namespace:
        ref["namespace"] = namespace
    return {"name": name, "severity": severity, "providerRef": ref}


class Logs:
    """Stands in for the module's structlog logger."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.records.append(("error", event, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self.records.append(("debug", event, kw))

    def errors(self) -> list[dict[str, Any]]:
        return [kw for level, event, kw in self.records if level == "error"]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Logs:
    recorder = Logs()
    monkeypatch.setattr(notify, "log", recorder)
    return recorder


@pytest.fixture
async def sender() -> AsyncIterator[HttpAlertSender]:
    async with open_alert_sender() as opened:
        yield opened


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster()


def body(route: respx.Route) -> dict[str, Any]:
    decoded = json.loads(route.calls.last.request.content)
    assert isinstance(decoded, dict)
    return decoded


INFO = Alert("Canary analysis completed successfully, promotion finished.", "info")
WARN = Alert("Canary is waiting for approval.", "warn")
ERROR = Alert("Failed checks threshold reached 5", "error")


# -- fields -----------------------------------------------------------------------------------


def test_fields_without_metadata_only_carry_the_cluster() -> None:
    assert alert_fields(canary(), with_metadata=False) == ()
    assert alert_fields(canary(), with_metadata=False, cluster_name="prod-eu") == (
        AlertField("Cluster", "prod-eu"),
    )


def test_metadata_fields_for_a_weighted_canary() -> None:
    c = canary(threshold=3, stepWeight=5, maxWeight=30)
    assert alert_fields(c, with_metadata=True, cluster_name="prod-eu") == (
        AlertField("Cluster", "prod-eu"),
        AlertField("Target", "Deployment/podinfo.test"),
        AlertField("Failed checks threshold", "3"),
        AlertField("Progress deadline", "600s"),
        AlertField("Traffic routing", "Weight step: 5 max: 30"),
    )


@pytest.mark.parametrize(
    ("analysis", "routing"),
    [
        ({"stepWeight": 10}, "Weight step: 10 max: 100"),
        ({"stepWeights": [1, 5, 25, 50]}, "Weight steps: 1,5,25,50 max: 50"),
        ({"iterations": 10, "match": [{"headers": {"x-canary": {"exact": "1"}}}]}, "A/B Testing"),
        ({"iterations": 10}, "Blue/Green"),
    ],
)
def test_traffic_routing_field(analysis: dict[str, Any], routing: str) -> None:
    fields = alert_fields(canary(**analysis), with_metadata=True)
    assert fields[-1] == AlertField("Traffic routing", routing)
    assert AlertField("Failed checks threshold", "5") in fields


def test_threshold_and_deadline_defaults() -> None:
    c = canary(threshold=0)
    fields = {f.name: f.value for f in alert_fields(c, with_metadata=True)}
    assert fields["Failed checks threshold"] == "1"
    assert fields["Progress deadline"] == "600s"


# -- severity routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_severity", "receives"),
    [
        ("info", {"info", "warn", "error"}),
        ("", {"info", "warn", "error"}),  # Q6: empty means info
        ("warn", {"warn", "error"}),
        ("error", {"error"}),
    ],
)
def test_severity_table(entry_severity: str, receives: set[str]) -> None:
    alert_entry = AlertEntry.model_validate(entry("p", entry_severity))
    for severity in ("info", "warn", "error"):
        assert entry_receives(alert_entry, severity) is (severity in receives)


@pytest.mark.parametrize(
    ("alert", "called"),
    [
        (INFO, {"info", "empty"}),
        (WARN, {"info", "empty", "warn"}),
        (ERROR, {"info", "empty", "warn", "error"}),
    ],
)
@respx.mock
async def test_routing_by_severity_end_to_end(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs, alert: Alert, called: set[str]
) -> None:
    routes = {}
    for level in ("info", "empty", "warn", "error"):
        url = f"https://hooks.example/{level}"
        cluster.seed(provider(level, type="slack", address=url))
        routes[level] = respx.post(url).respond(200)
    c = canary(
        alerts=[
            entry("info", "info"),
            entry("empty", ""),
            entry("warn", "warn"),
            entry("error", "error"),
        ]
    )
    router = AlertRouter(cluster, sender, NotifyOptions(slack_url=SLACK))
    global_route = respx.post(SLACK).respond(200)
    await router(c, alert)
    assert {level for level, route in routes.items() if route.called} == called
    assert not global_route.called  # a canary with alerts never uses the global notifier
    assert logs.errors() == []


# -- global notifier --------------------------------------------------------------------------


@respx.mock
async def test_global_slack_without_alerts_gets_everything(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    route = respx.post(SLACK).respond(200)
    options = NotifyOptions(
        slack_url=SLACK, slack_channel="#deployments", slack_user="Flagger", slack_token="xoxb-1"
    )
    router = AlertRouter(cluster, sender, options)
    assert router.global_notifier == "slack"
    for alert in (INFO, WARN, ERROR):
        await router(canary(), alert)
    assert route.call_count == 3
    posted = body(route)
    assert (posted["channel"], posted["username"]) == ("#deployments", "Flagger")
    assert posted["attachments"][0]["color"] == "danger"
    assert posted["attachments"][0]["text"] == ERROR.message
    assert route.calls.last.request.headers["authorization"] == "Bearer xoxb-1"


@respx.mock
async def test_global_teams_wins_over_slack(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    slack = respx.post(SLACK).respond(200)
    teams = respx.post(TEAMS).respond(200)
    router = AlertRouter(cluster, sender, NotifyOptions(slack_url=SLACK, msteams_url=TEAMS))
    assert router.global_notifier == "msteams"
    await router(
        canary(), Alert("New Deployment detected, initialization completed.", "info", True)
    )
    assert not slack.called
    posted = body(teams)
    assert posted["@type"] == "MessageCard"
    assert [f["name"] for f in posted["sections"][0]["facts"]] == [
        "Target",
        "Failed checks threshold",
        "Progress deadline",
        "Traffic routing",
    ]


def test_global_target_defaults() -> None:
    assert global_target(NotifyOptions()) is None
    target = global_target(NotifyOptions(slack_url=SLACK, slack_proxy_url="http://proxy:3128"))
    assert target is not None
    # no channel configured: the payload gets Flagger's "general" (test_cluster_name_is_added...)
    assert (target.type, target.channel, target.username, target.proxy) == (
        "slack",
        "",
        "flagger",
        "http://proxy:3128",
    )
    teams = global_target(
        NotifyOptions(msteams_url=TEAMS, msteams_proxy_url="http://p:1", slack_url=SLACK)
    )
    assert teams is not None and (teams.type, teams.address, teams.proxy) == (
        "msteams",
        TEAMS,
        "http://p:1",
    )


@respx.mock
async def test_no_global_notifier_and_no_alerts_sends_nothing(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    router = AlertRouter(cluster, sender)
    assert router.global_notifier == ""
    await router(canary(), ERROR)  # respx would raise on any unmocked request
    assert logs.records == []


@respx.mock
async def test_cluster_name_is_added_to_every_alert(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    route = respx.post(SLACK).respond(200)
    router = AlertRouter(cluster, sender, NotifyOptions(slack_url=SLACK, cluster_name="prod-eu"))
    await router(canary(), WARN)
    assert body(route)["attachments"][0]["fields"] == [
        {"title": "Cluster", "value": "prod-eu", "short": False}
    ]
    assert (body(route)["channel"], body(route)["username"]) == ("general", "flagger")


# -- per-canary providers ---------------------------------------------------------------------


@respx.mock
async def test_provider_defaults_and_namespaces(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    local = respx.post("https://hooks.example/local").respond(200)
    shared = respx.post("https://discord.com/api/webhooks/9/tok/slack").respond(204)
    cluster.seed(
        provider("local", type="rocket", address="https://hooks.example/local"),
        provider(
            "shared",
            "flagger-system",
            type="discord",
            address="https://discord.com/api/webhooks/9/tok",
            channel="deploys",
            username="bot",
        ),
    )
    c = canary(alerts=[entry("local"), entry("shared", "error", namespace="flagger-system")])
    router = AlertRouter(cluster, sender)
    await router(c, ERROR)
    posted = body(local)
    assert (posted["channel"], posted["username"]) == ("general", "flagger")
    assert posted["attachments"][0]["color"] == "#FF0000"
    assert (body(shared)["channel"], body(shared)["username"]) == ("deploys", "bot")
    assert logs.errors() == []


@respx.mock
async def test_secret_supplies_address_and_token(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    url = "https://hooks.slack.com/services/T/B/from-secret"
    route = respx.post(url).respond(200)
    cluster.seed(
        provider("slack", type="slack", channel="#deployments", secretRef={"name": "slack-url"}),
        secret("slack-url", address=url + "\n", token="xoxb-secret"),
    )
    await AlertRouter(cluster, sender)(canary(alerts=[entry("slack")]), INFO)
    assert route.called
    assert route.calls.last.request.headers["authorization"] == "Bearer xoxb-secret"
    assert body(route)["channel"] == "#deployments"


@respx.mock
async def test_secret_address_overrides_spec_address(sender: HttpAlertSender, logs: Logs) -> None:
    # The CRD's oneOf forbids both, so only a body the API server never validated has both;
    # Flagger's rule still applies: the Secret's address wins.
    class Both(InMemoryCluster):
        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> dict[str, Any] | None:
            found = await super().get(ref, fresh=fresh)
            if found is not None and ref.name == "both":
                found = json_copy(found)
                found["spec"]["address"] = "https://hooks.example/spec"
            return found

    cluster = Both()
    cluster.seed(
        provider("both", type="msteams", secretRef={"name": "teams"}),
        secret("teams", address="https://hooks.example/secret"),
    )
    spec_route = respx.post("https://hooks.example/spec").respond(200)
    secret_route = respx.post("https://hooks.example/secret").respond(200)
    await AlertRouter(cluster, sender)(canary(alerts=[entry("both")]), INFO)
    assert secret_route.called and not spec_route.called
    assert logs.errors() == []


@respx.mock
async def test_a_failing_provider_does_not_stop_the_others(
    cluster: InMemoryCluster, sender: HttpAlertSender, logs: Logs
) -> None:
    cluster.seed(
        provider("down", type="slack", address="https://hooks.example/down"),
        provider("refused", type="slack", address="https://hooks.example/refused"),
        provider("no-secret", type="slack", secretRef={"name": "missing"}),
        provider("empty-secret", type="slack", secretRef={"name": "empty"}),
        secret("empty", token="only-a-token"),
        provider("bad", type="slack", address="https://hooks.example/bad", proxy=""),
        provider("ok", type="gchat", address="https://chat.googleapis.com/v1/spaces/x"),
    )
    # make "bad" unparsable: an unknown provider type
    bad = json_copy(await cluster.get(ObjectRef(ALERT_PROVIDER, NS, "bad")))
    assert bad is not None
    bad["spec"]["type"] = "pagerduty"
    cluster.seed(bad)
    respx.post("https://hooks.example/down").respond(500, text="internal error")
    respx.post("https://hooks.example/refused").mock(side_effect=httpx.ConnectError("refused"))
    ok = respx.post("https://chat.googleapis.com/v1/spaces/x").respond(200)
    c = canary(
        alerts=[
            entry("down"),
            entry("refused"),
            entry("missing"),
            entry("no-secret"),
            entry("empty-secret"),
            entry("bad"),
            entry("ok"),
        ]
    )
    await AlertRouter(cluster, sender)(c, ERROR)
    assert ok.called
    errors = {kw["provider"]: kw["error"] for kw in logs.errors()}
    assert errors == {
        "down.test": "slack POST https://hooks.example/… answered HTTP 500 Internal Server Error: "
        "internal error",
        "refused.test": "slack POST https://hooks.example/… failed: ConnectError: refused",
        "missing.test": "alert provider missing.test not found",
        "no-secret.test": "alert provider no-secret.test secretRef: secret missing.test not found",
        "empty-secret.test": "alert provider empty-secret.test secretRef: secret empty.test has "
        "no 'address'",
        "bad.test": errors["bad.test"],
    }
    assert errors["bad.test"].startswith("alert provider bad.test is invalid: spec.type")
    assert all(kw["canary"] == "test/podinfo" for kw in logs.errors())


async def test_a_secret_that_never_arrives_costs_the_alert_budget_not_the_api_timeout(
    sender: HttpAlertSender, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The AlertProvider's Secret is read within the alert's budget: a slow API server would
    # otherwise hold the canary's tick for the Kubernetes client's 30 s (found by a reviewer).
    import engine.shell.notify as notify

    monkeypatch.setattr(notify, "ALERT_TIMEOUT_SECONDS", 0.2)

    class SlowSecrets(InMemoryCluster):
        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> dict[str, Any] | None:
            if ref.kind.kind == "Secret":
                await asyncio.Event().wait()
            return await super().get(ref, fresh=fresh)

    cluster = SlowSecrets()
    cluster.seed(provider("slack", type="slack", secretRef={"name": "slack-url"}))
    await asyncio.wait_for(AlertRouter(cluster, sender)(canary(alerts=[entry("slack")]), INFO), 5)
    assert [kw["error"] for kw in logs.errors()] == [
        "alert provider slack.test could not be read within 0.2s"
    ]


async def test_cluster_errors_are_logged_not_raised(sender: HttpAlertSender, logs: Logs) -> None:
    from traffic.cluster import ClusterUnavailable

    class Down(InMemoryCluster):
        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> dict[str, Any] | None:
            raise ClusterUnavailable("api server unreachable")

    await AlertRouter(Down(), sender)(canary(alerts=[entry("p")]), ERROR)
    assert (
        logs.errors()[0]["error"]
        == "alert provider p.test could not be read: api server unreachable"
    )


async def test_a_raising_sender_is_logged_not_raised(cluster: InMemoryCluster, logs: Logs) -> None:
    class Broken:
        async def send(self, *args: Any, **kwargs: Any) -> str:
            raise RuntimeError("boom")

    await AlertRouter(cluster, Broken(), NotifyOptions(slack_url=SLACK))(canary(), INFO)
    assert logs.errors() == [
        {"canary": "test/podinfo", "provider": "slack (global)", "error": "RuntimeError: boom"}
    ]


# -- CLI --------------------------------------------------------------------------------------


_FLAGGER_ENV = ("SLACK_URL", "SLACK_TOKEN", "SLACK_PROXY_URL", "MSTEAMS_URL", "MSTEAMS_PROXY_URL")
_OPTIONS = (
    "slack-url",
    "slack-token",
    "slack-proxy-url",
    "slack-user",
    "slack-channel",
    "msteams-url",
    "msteams-proxy-url",
    "cluster-name",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _FLAGGER_ENV:
        monkeypatch.delenv(name, raising=False)
    for option in _OPTIONS:
        monkeypatch.delenv(f"CANARY_ENGINE_{option.upper().replace('-', '_')}", raising=False)
    return monkeypatch


def _run_options(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> Any:
    """Run ``canary-engine run ...`` up to run_controller and return the RunOptions it got."""
    import engine.cli
    import engine.shell.run

    seen: list[Any] = []

    async def fake_run_controller(options: Any) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(engine.shell.run, "run_controller", fake_run_controller)
    monkeypatch.setattr(engine.cli, "_configure_logs", lambda args: None)
    assert engine.cli.main(["run", *argv]) == 0
    return seen[0]


def test_cli_defaults(clean_env: pytest.MonkeyPatch) -> None:
    options = _run_options(clean_env, [])
    assert options.notify == NotifyOptions()
    assert options.notify.slack_user == "flagger"


def test_cli_flags(clean_env: pytest.MonkeyPatch) -> None:
    options = _run_options(
        clean_env,
        [
            "--slack-url",
            SLACK,
            "--slack-token",
            "xoxb-1",
            "--slack-proxy-url",
            "http://proxy:3128",
            "--slack-user",
            "Flagger",
            "--slack-channel",
            "#deployments",
            "--msteams-url",
            TEAMS,
            "--msteams-proxy-url",
            "http://proxy:8080",
            "--cluster-name",
            "prod-eu",
        ],
    )
    assert options.notify == NotifyOptions(
        slack_url=SLACK,
        slack_token="xoxb-1",
        slack_proxy_url="http://proxy:3128",
        slack_user="Flagger",
        slack_channel="#deployments",
        msteams_url=TEAMS,
        msteams_proxy_url="http://proxy:8080",
        cluster_name="prod-eu",
    )


def test_cli_canary_engine_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CANARY_ENGINE_SLACK_URL", SLACK)
    clean_env.setenv("CANARY_ENGINE_SLACK_CHANNEL", "#deployments")
    clean_env.setenv("CANARY_ENGINE_SLACK_USER", "Flagger")
    clean_env.setenv("CANARY_ENGINE_CLUSTER_NAME", "prod-eu")
    options = _run_options(clean_env, [])
    assert options.notify == NotifyOptions(
        slack_url=SLACK, slack_user="Flagger", slack_channel="#deployments", cluster_name="prod-eu"
    )


def test_flaggers_env_names_win_over_flags(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_URL", "https://hooks.slack.com/services/from-env")
    clean_env.setenv("SLACK_TOKEN", "env-token")
    clean_env.setenv("SLACK_PROXY_URL", "http://env-proxy:1")
    clean_env.setenv("MSTEAMS_URL", "https://teams.example/from-env")
    clean_env.setenv("MSTEAMS_PROXY_URL", "http://env-proxy:2")
    clean_env.setenv("CANARY_ENGINE_SLACK_URL", "https://ignored.example/")
    options = _run_options(
        clean_env,
        ["--slack-url", SLACK, "--slack-token", "flag-token", "--msteams-url", TEAMS],
    )
    assert options.notify.slack_url == "https://hooks.slack.com/services/from-env"
    assert options.notify.slack_token == "env-token"
    assert options.notify.slack_proxy_url == "http://env-proxy:1"
    assert options.notify.msteams_url == "https://teams.example/from-env"
    assert options.notify.msteams_proxy_url == "http://env-proxy:2"


def test_msteams_env_alone_selects_teams(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MSTEAMS_URL", TEAMS)
    options = _run_options(clean_env, ["--slack-url", SLACK])
    target = global_target(options.notify)
    assert target is not None and target.type == "msteams"


def test_run_options_keep_working_without_notify_fields() -> None:
    from engine.shell.run import options_from_env

    options = options_from_env(
        kubeconfig=None,
        namespaces=[],
        selector=None,
        metrics_server="http://prometheus:9090",
        mesh_provider="kubernetes",
        port=8080,
        leader_elect=False,
        version="0",
    )
    assert isinstance(options.notify, NotifyOptions)
