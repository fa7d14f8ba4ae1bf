"""A URL whose port no connection can go to (found by fuzzing webhook URLs): httpx reads any
number as a port, and connecting to ``:99999`` or ``:-1`` raised an ExceptionGroup (an
OverflowError inside anyio), no httpx error. It escaped the webhook caller, which "never raises",
and crashed every tick of the Canary (no Warning, no status: the controller only logged
``canary_task_crashed``); the alert sender raised it too. Each is now a failure naming the port.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import httpx
import pytest
import yaml

import config
from analysis import HttpWebhookCaller, ProviderUnavailable, template_problems
from analysis.providers._base import Http
from engine.shell.alerts import open_alert_sender

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
PORTS = ["99999", "-1"]


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("port", PORTS)
async def test_a_webhook_on_a_port_out_of_range_fails_without_raising(port: str) -> None:
    hook = config.Webhook.model_validate(
        {"name": "gate", "url": f"http://127.0.0.1:{port}/gate", "retries": 2}
    )
    async with httpx.AsyncClient() as client, httpx.AsyncClient(verify=False) as insecure:
        caller = HttpWebhookCaller(client, insecure, sleep=_no_sleep)
        outcome = await caller.call(hook, {"name": "web"})
    assert not outcome.ok
    assert f"port {port} is out of range 1-65535" in (outcome.message or "")


class _RedirectsToABadPort(httpx.AsyncBaseTransport):
    """Answers prom.test with a redirect to port 99999; any other request goes out for real
    (to 127.0.0.1, where connecting to that port raised)."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "prom.test":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:99999/api"})
        return await self._real.handle_async_request(request)


async def test_a_redirect_to_a_port_out_of_range_is_a_query_failure_not_a_raise() -> None:
    # a metric source follows a redirect to another origin when nothing is carried there: the
    # server's Location may name any port
    async with httpx.AsyncClient(transport=_RedirectsToABadPort()) as client:
        http = Http(lambda insecure: client)
        with pytest.raises(ProviderUnavailable, match="port 99999 is out of range 1-65535"):
            await http.send("graphite", "GET", "http://prom.test/render")


@pytest.mark.parametrize(
    ("address", "proxy"),
    [("http://127.0.0.1:99999/hook", ""), ("http://127.0.0.1:9/hook", "http://127.0.0.1:99999")],
    ids=["hook", "proxy"],
)
async def test_an_alert_on_a_port_out_of_range_is_an_error_not_a_raise(
    address: str, proxy: str
) -> None:
    # (the address may come from a Secret at run time, past any validation)
    async with open_alert_sender(timeout_seconds=5.0) as sender:
        error = await sender.send(
            "slack",
            address,
            message="m",
            canary="web",
            namespace="staging",
            severity="error",
            proxy=proxy,
        )
    assert "port 99999 is out of range 1-65535" in error, error


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("http://prometheus:99999", "Port out of range"),
        ("http://prometheus:-1", "Port could not be cast"),
        ("http:///api", "it names no host"),
    ],
)
def test_validate_refuses_a_template_address_no_request_can_go_to(
    address: str, reason: str
) -> None:
    docs = yaml.safe_load_all((EXAMPLES / "webhook-server.yaml").read_text())
    (body,) = [d for d in docs if d and d.get("kind") == "MetricTemplate"]
    body = copy.deepcopy(body)
    body["spec"]["provider"]["address"] = address
    problems = template_problems(config.parse_metric_template(body))
    assert [f for f, m in problems if reason in m] == ["spec.provider.address"], problems


async def test_the_controller_reports_such_a_webhook_url_instead_of_crashing_each_tick() -> None:
    from tests.engine.driver_world import web_driver

    async with httpx.AsyncClient() as client, httpx.AsyncClient(verify=False) as insecure:
        caller = HttpWebhookCaller(client, insecure, sleep=_no_sleep)
        hooks = [{"name": "gate", "type": "pre-rollout", "url": "http://127.0.0.1:99999/gate"}]
        _, driver = web_driver(webhooks=hooks, caller=caller)
        report = await driver.tick()
    assert report.error is not None
    assert "spec.analysis.webhooks[0].url: must be an http(s) URL" in report.error
    assert any(e.type == "Warning" and "webhooks[0].url" in e.message for e in report.events)
