"""No configured secret reaches any output channel (issue 10, "Secrets").

A distinctive secret is planted in every place a user configures one -- chat hook addresses (Slack,
MS Teams, Discord, Rocket.Chat, Google Chat; on their own hosts and on custom ones), a Slack token,
a proxy's user info, a MetricTemplate's credentials Secret (token, or user name and password), a
Prometheus address with ``user:password@``, template headers, a webhook URL with user info and a
token parameter, ``record --prometheus http://user:password@...`` -- and the servers answer the
worst way they can: a 404 page echoing the path, a 500 echoing ``Authorization: Bearer xoxb-…``, a
401 echoing the Authorization header, a transport error whose text holds the URL, a timeout.

Every channel is captured and searched: the structlog JSON lines on stderr
(``engine.shell.logs``), the stdlib logging records of the HTTP libraries (held at DEBUG here,
as the worst case), stdout, and
the messages handed back to the engine (check results that become Kubernetes events, webhook
outcomes, provider-check reasons, alert errors, ``record``'s output). The secret must be nowhere,
in any encoding.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import respx
import structlog
import yaml

import analysis._text as text_module
import config
import engine.shell.notify as notify
from analysis import (
    Check,
    MetricQuery,
    QueryFailure,
    SeriesRequest,
    analyze,
    open_prometheus,
    open_webhook_caller,
    plan_queries,
)
from engine import Alert
from engine.shell import logs
from engine.shell.alerts import HttpAlertSender, open_alert_sender
from engine.shell.notify import AlertRouter, NotifyOptions, global_target
from tests.servers import free_port
from traffic import InMemoryCluster

SECRET = "S3CR3T-xyz"
TOKEN = f"xoxb-{SECRET}"
NS = "test"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


#: Anything that would give the secret away: the secret's distinctive head (so no encoding and no
#: half of it passes) and the basic-auth header values built from it.
NEEDLES = ("S3CR3T", _b64(f"user:{SECRET}"), _b64(f"flagger:{SECRET}"), _b64(SECRET))

#: Chat hook addresses whose path is the secret: on the providers' own hosts (also masked by
#: pattern) and on custom hosts (masked only because the address is known).
HOOKS: dict[str, list[str]] = {
    "slack": [
        f"https://hooks.slack.com/services/T0/B0/{SECRET}",
        f"https://slack-proxy.internal.example/services/T0/B0/{SECRET}",
    ],
    "msteams": [
        f"https://acme.webhook.office.com/webhookb2/{SECRET}@tenant/IncomingWebhook/0a1b/{SECRET}",
        f"https://teams.internal.example/webhook/{SECRET}",
    ],
    "discord": [
        f"https://discord.com/api/webhooks/123/{SECRET}",
        f"https://discord.internal.example/api/webhooks/123/{SECRET}",
    ],
    "rocket": [f"https://rocket.example.com/hooks/abc/{SECRET}"],
    "gchat": [
        f"https://chat.googleapis.com/v1/spaces/AAAA/messages?key={SECRET}&token={SECRET}",
        f"https://gchat.internal.example/v1/spaces/AAAA/messages?key={SECRET}k&token={SECRET}t",
    ],
}
HOOK_CASES = [(kind, url) for kind, urls in HOOKS.items() for url in urls]


# -- capturing every channel --------------------------------------------------------------------


@dataclass
class Channels:
    """Everything that left the code under test: stderr/stdout, log records, returned texts."""

    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    returned: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def add(self, *texts: object) -> None:
        self.returned += [str(t) for t in texts]

    def text(self) -> str:
        out, err = self.capsys.readouterr()
        self.seen += [out, err]
        records = []
        for record in self.caplog.records:
            records.append(record.getMessage())
            records.append(record.exc_text or "")
            records.append(record.stack_info or "")
        return "\n".join([*self.seen, self.caplog.text, *records, *self.returned])

    def assert_clean(self) -> str:
        everything = self.text()
        for needle in NEEDLES:
            assert needle not in everything, _around(everything, needle)
        return everything


def _around(text: str, needle: str) -> str:
    at = text.index(needle)
    return f"{needle!r} leaked: …{text[max(0, at - 300) : at + 100]}…"


@pytest.fixture
def channels(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Channels]:
    """JSON logs on stderr as in the cluster, library loggers at DEBUG (the worst case: someone
    turned them up), and everything restored afterwards."""
    saved_structlog = structlog.get_config()
    # what the code under test remembers as secret is forgotten afterwards
    monkeypatch.setattr(text_module, "_remembered", text_module.remembered())
    library = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in logs.LIBRARY_LOGGERS
    ]
    loggers = [logging.getLogger(n) for n in {*library, *logs.LIBRARY_LOGGERS}]
    saved_loggers = [(lg, lg.level, list(lg.filters)) for lg in loggers]
    handlers = list(logging.getLogger().handlers)
    saved_handlers = [(h, list(h.filters)) for h in handlers]
    saved_factory = logging.getLogRecordFactory()

    logs.configure("json", "debug")
    for lg in loggers:
        if lg.name in logs.LIBRARY_LOGGERS:
            assert lg.getEffectiveLevel() >= logging.WARNING, lg.name
        lg.setLevel(logging.DEBUG)
    # engine.shell.notify's module logger may have been bound (and cached) before: use a fresh one.
    monkeypatch.setattr(notify, "log", structlog.get_logger("canary-engine"))
    try:
        yield Channels(capsys, caplog)
    finally:
        structlog.configure(**saved_structlog)
        logging.setLogRecordFactory(saved_factory)
        for lg, level, filters in saved_loggers:
            lg.setLevel(level)
            lg.filters[:] = filters
        for handler, filters in saved_handlers:
            handler.filters[:] = filters


# -- servers that echo what they got ------------------------------------------------------------


def _echo(request: httpx.Request) -> str:
    url = str(request.url)
    return (
        f"url={url} path={request.url.raw_path.decode()} encoded={quote(url, safe='')} "
        f"Authorization: {request.headers.get('authorization', '-')}"
    )


def echo_404(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, text=f"<html><h1>Not Found</h1><p>{_echo(request)}</p></html>")


def echo_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500, text=f"internal error: Bearer {TOKEN} rejected\n{_echo(request)}\n{request.headers}"
    )


def echo_401(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        401,
        json={
            "status": "error",
            "errorType": "unauthorized",
            "error": f"bad credentials in {dict(request.headers)!r} for {request.url}",
        },
    )


def echo_200_garbage(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=f"<html>login page for {_echo(request)}</html>")


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"connection refused: {request.url} ({_echo(request)})")


def time_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout(f"read timed out: {request.url}")


REPLIES: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "404-echo": echo_404,
    "500-echo": echo_500,
    "401-echo": echo_401,
    "200-garbage": echo_200_garbage,
    "refused": refuse,
    "timeout": time_out,
}


# -- alerts -------------------------------------------------------------------------------------


def _canary_doc(**analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "stepWeight": 10,
                "maxWeight": 50,
                **analysis,
            },
        },
    }


def _canary(**analysis: Any) -> config.Canary:
    return config.parse_canary(_canary_doc(**analysis))


@pytest.fixture
async def sender() -> AsyncIterator[HttpAlertSender]:
    async with open_alert_sender(timeout_seconds=1.0) as opened:
        yield opened


ERROR = Alert("Failed checks threshold reached 5", "error")


@pytest.mark.parametrize("reply", ["404-echo", "500-echo", "refused", "timeout"])
@pytest.mark.parametrize(("provider_type", "address"), HOOK_CASES)
@respx.mock
async def test_alert_sender_errors_never_show_the_hook_or_token(
    channels: Channels,
    sender: HttpAlertSender,
    provider_type: str,
    address: str,
    reply: str,
) -> None:
    route = respx.route(method="POST").mock(side_effect=REPLIES[reply])
    error = await sender.send(
        provider_type,
        address,
        message="m",
        canary="podinfo",
        namespace=NS,
        severity="error",
        token=TOKEN,
    )
    assert route.called and error, error
    channels.add(error)
    text = channels.assert_clean()
    assert "HTTP Request: POST" in text or reply in ("refused", "timeout")  # httpx's log captured


@pytest.mark.parametrize(
    "address",
    [f"https://user:{SECRET}@hooks.example/x", f"not a url {SECRET}", f"ftp://h/{SECRET}"],
)
async def test_alert_sender_bad_addresses_are_not_echoed(
    channels: Channels, sender: HttpAlertSender, address: str
) -> None:
    error = await sender.send(
        "slack", address, message="m", canary="podinfo", namespace=NS, severity="error"
    )
    assert error
    channels.add(error)
    channels.assert_clean()


async def test_alert_sender_bad_proxy_is_not_echoed(
    channels: Channels, sender: HttpAlertSender
) -> None:
    error = await sender.send(
        "slack",
        HOOKS["slack"][0],
        message="m",
        canary="podinfo",
        namespace=NS,
        severity="error",
        proxy=f"http://proxyuser:{SECRET}@proxy.test:badport",
    )
    assert error.startswith("slack: invalid proxy URL"), error
    channels.add(error)
    channels.assert_clean()


def _provider(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def _secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {k: _b64(v) for k, v in data.items()},
    }


@pytest.mark.parametrize("reply", ["404-echo", "500-echo", "refused"])
@respx.mock
async def test_alert_router_logs_carry_no_secret(
    channels: Channels, sender: HttpAlertSender, reply: str
) -> None:
    cluster = InMemoryCluster()
    entries = []
    for i, (provider_type, address) in enumerate(HOOK_CASES):
        from_secret = i % 2 == 0
        spec: dict[str, Any] = {"type": provider_type}
        if from_secret:
            spec["secretRef"] = {"name": f"hook-{i}"}
            cluster.seed(_secret(f"hook-{i}", address=address + "\n", token=TOKEN))
        else:
            spec["address"] = address
        cluster.seed(_provider(f"p{i}", **spec))
        entries.append({"name": f"p{i}", "providerRef": {"name": f"p{i}"}})
    # an invalid provider whose address still holds the secret
    cluster.seed(_provider("bad", type="pagerduty", address=HOOKS["slack"][1]))
    entries.append({"name": "bad", "providerRef": {"name": "bad"}})
    respx.route(method="POST").mock(side_effect=REPLIES[reply])

    await AlertRouter(cluster, sender)(_canary(alerts=entries), ERROR)

    text = channels.assert_clean()
    assert text.count('"event": "alert_not_sent"') == len(entries), text


@respx.mock
async def test_the_global_notifier_keeps_its_url_and_token_out_of_logs_and_reprs(
    channels: Channels, sender: HttpAlertSender
) -> None:
    options = NotifyOptions.from_flags(
        slack_url=HOOKS["slack"][1],
        slack_token=TOKEN,
        slack_proxy_url=f"http://u:{SECRET}@proxy.test:3128",
        msteams_url="",
        environ={},
    )
    target = global_target(options)
    assert target is not None
    channels.add(repr(options), repr(target), options, target)
    respx.route(method="POST").mock(side_effect=echo_500)
    await AlertRouter(InMemoryCluster(), sender, options)(_canary(), ERROR)
    # even a line that names them outright: the global notifier's secrets are known to the logs
    structlog.get_logger("canary-engine").info("debugging", url=HOOKS["slack"][1], token=TOKEN)
    logging.getLogger("httpx").info("HTTP Request: POST %s", HOOKS["slack"][1])
    text = channels.assert_clean()
    assert '"event": "alert_not_sent"' in text and '"event": "debugging"' in text


# -- Prometheus ---------------------------------------------------------------------------------

PROM = "http://prom.test:9090"
PROM_WITH_PASSWORD = f"http://user:{SECRET}@prom.test:9090"
PROM_WITH_TOKEN_USER = f"http://{SECRET}@prom.test:9090"


@dataclass(frozen=True)
class PromCase:
    name: str
    server: str
    credentials: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


PROM_CASES = [
    PromCase("address-password", PROM_WITH_PASSWORD),
    PromCase("address-token-user", PROM_WITH_TOKEN_USER),
    PromCase("secret-token", PROM, {"token": SECRET}),
    PromCase("secret-basic", PROM, {"username": "flagger", "password": SECRET}),
    PromCase("header-token", PROM, headers={"Authorization": f"Bearer {SECRET}"}),
    PromCase("header-api-key", PROM, headers={"X-Api-Key": SECRET}),
]


def _template_query(case: PromCase) -> MetricQuery:
    provider: dict[str, Any] = {"type": "prometheus", "address": case.server}
    if case.credentials is not None:
        provider["secretRef"] = {"name": "prom-auth"}
    if case.headers:
        provider["headers"] = case.headers
    template = config.parse_metric_template(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "latency", "namespace": NS},
            "spec": {"provider": provider, "query": 'sum(rate(x{app="{{ target }}"}[1m]))'},
        }
    )
    canary = _canary(
        metrics=[
            {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 1}}
        ]
    )
    [query] = plan_queries(
        canary, {(NS, "latency"): template}, provider="istio", default_server="http://x"
    )
    return query


async def _no_sleep(_: float) -> None:
    return None


@pytest.mark.parametrize("reply", list(REPLIES))
@pytest.mark.parametrize("case", PROM_CASES, ids=lambda c: c.name)
@respx.mock
async def test_prometheus_failures_carry_no_credential(
    channels: Channels, case: PromCase, reply: str
) -> None:
    route = respx.route(host="prom.test").mock(side_effect=REPLIES[reply])
    query = _template_query(case)

    def credentials(ref: str) -> dict[str, str] | None:
        return case.credentials

    async with open_prometheus(
        sleep=_no_sleep, credentials=credentials, timeout_seconds=1.0, retries=1
    ) as source:
        # the message becomes a Kubernetes event
        [check] = await analyze(source, [Check(query=query, hi=1.0)])
        [series] = await source.fetch_series(
            [SeriesRequest(query=query, start=1000.0, end=1600.0, step=60.0)]
        )
        # the provider check's event (analysis.MetricSources.check_providers words its ping)
        secret = query.endpoint.secret
        ping = await source.ping(case.server, headers=case.headers, secret=secret)
        raised = ""
        try:
            await source.query("up", server=case.server, headers=case.headers, secret=secret)
        except Exception as exc:
            raised = f"{type(exc).__name__}: {exc}"
    assert route.called
    assert check.message and isinstance(series, QueryFailure) and ping and raised
    channels.add(check.message, check.failure, series.message, ping, raised)
    channels.assert_clean()


async def test_a_credentials_reader_that_fails_loudly_is_redacted(channels: Channels) -> None:
    query = _template_query(PromCase("secret-token", PROM_WITH_PASSWORD, {"token": SECRET}))

    def credentials(ref: str) -> dict[str, str]:
        raise RuntimeError(f"cannot read {ref}: data was {{'token': '{SECRET}'}}")

    async with open_prometheus(sleep=_no_sleep, credentials=credentials) as source:
        [check] = await analyze(source, [Check(query=query, hi=1.0)])
    # the reader's error is reported (so the message was built from it), with the secret masked
    assert "reading credentials Secret test/prom-auth failed" in check.message, check.message
    channels.add(check.message)
    channels.assert_clean()


# -- webhooks -----------------------------------------------------------------------------------

HOOK_URL = f"http://hookuser:{SECRET}@loadtester.test/hook?token={SECRET}-tok&cmd=run"


@pytest.mark.parametrize(
    ("reply", "retries"),
    [("500-echo", 1), ("404-echo", 0), ("refused", 0), ("refused", 2), ("timeout", 1)],
)
@respx.mock
async def test_webhook_failures_carry_no_credential(
    channels: Channels, reply: str, retries: int
) -> None:
    respx.route(host="loadtester.test").mock(side_effect=REPLIES[reply])
    hook = config.Webhook.model_validate(
        {"name": "load-test", "url": HOOK_URL, "retries": retries, "timeout": "5s"}
    )
    async with open_webhook_caller(sleep=_no_sleep) as caller:
        outcome = await caller.call(hook, {"name": "podinfo", "namespace": NS})
    assert not outcome.ok and outcome.message
    channels.add(outcome.message)
    channels.assert_clean()


async def test_webhook_timeouts_carry_no_credential(channels: Channels) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    hook = config.Webhook.model_validate({"name": "load-test", "url": HOOK_URL, "timeout": "50ms"})
    async with open_webhook_caller(sleep=_no_sleep, transport=httpx.MockTransport(hang)) as caller:
        outcome = await caller.call(hook, {"name": "podinfo"})
    assert "timed out" in outcome.message
    channels.add(outcome.message)
    channels.assert_clean()


# -- record -------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC)


def _record_args(tmp_path: Path, prometheus: str, *, template: bool = False) -> argparse.Namespace:
    metric: dict[str, Any] = {"name": "request-success-rate", "thresholdRange": {"min": 99}}
    docs: list[dict[str, Any]] = []
    if template:
        metric = {"name": "lat", "templateRef": {"name": "lat"}, "thresholdRange": {"max": 1}}
        docs.append(
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "MetricTemplate",
                "metadata": {"name": "lat", "namespace": NS},
                "spec": {
                    "provider": {
                        "type": "prometheus",
                        "address": "http://in-cluster:9090",
                        "headers": {"X-Api-Key": SECRET},
                    },
                    "query": "up",
                },
            }
        )
    canary = _canary_doc(metrics=[metric])
    canary_file = tmp_path / "canary.yaml"
    canary_file.write_text(yaml.safe_dump_all([canary, *docs]))
    return argparse.Namespace(
        prometheus=prometheus,
        canary=str(canary_file),
        template=[],
        start="-1h",
        end="now",
        step="5m",
        output=str(tmp_path / "rec.csv"),
    )


def test_record_does_not_print_the_password_of_an_unreachable_prometheus(
    channels: Channels, tmp_path: Path
) -> None:
    from engine.cli.record import run_record

    url = f"http://user:{SECRET}@127.0.0.1:{free_port()}"
    err = io.StringIO()
    assert run_record(_record_args(tmp_path, url), now=lambda: NOW, stderr=err) == 4
    assert "unreachable" in err.getvalue()
    channels.add(err.getvalue())
    channels.assert_clean()


class _EchoAuth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'{{"status":"error","error":"denied {self.headers!s} for {self.path}"}}'.encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("template", [False, True])
def test_record_does_not_print_credentials_a_prometheus_echoes(
    channels: Channels, tmp_path: Path, echo_server: int, template: bool
) -> None:
    from engine.cli import main

    url = f"http://user:{SECRET}@127.0.0.1:{echo_server}"
    args = _record_args(tmp_path, url, template=template)
    argv = ["record", "--prometheus", args.prometheus, "--canary", args.canary]
    argv += ["--start", "-15m", "--end", "-5m", "--step", "5m", "-o", args.output]
    assert main(argv) == 4
    text = channels.assert_clean()
    assert "HTTP 401" in text and "canary-engine record:" in text


# -- the log plumbing itself --------------------------------------------------------------------


def test_library_records_and_structlog_lines_are_redacted(channels: Channels) -> None:
    address = HOOKS["msteams"][1]  # a custom host: no pattern knows it
    logs.add_secrets([address, "custom-token-1234"])
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 404"', address)
    logging.getLogger("httpcore.http11").debug("send_request_headers %s", PROM_WITH_PASSWORD)
    logging.getLogger("urllib3.connectionpool").debug(
        "%s GET /api?token=%s", PROM_WITH_PASSWORD, SECRET
    )
    logging.getLogger("kubernetes_asyncio.client.rest").debug(
        "response body: %s", {"data": {"token": "custom-token-1234"}}
    )
    log = structlog.get_logger("canary-engine")
    log.warning("something", error=f"Authorization: Bearer {TOKEN}", url=PROM_WITH_PASSWORD)
    try:
        raise ValueError(f"boom posting to {address} with custom-token-1234")
    except ValueError:
        log.exception("crashed")
        logging.getLogger("httpx").exception("crashed too")
    text = channels.assert_clean()
    assert "custom-token-1234" not in text
    assert '"event": "crashed"' in text and "crashed too" in text


def _fails_with_a_secret_in_a_local() -> None:
    credential = f"plain {SECRET} value"  # held in a local: no pattern could recognise it
    raise RuntimeError("request failed" if credential else "")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_do_not_show_local_variables(channels: Channels, fmt: logs.LogFormat) -> None:
    logs.configure(fmt, "info")
    try:
        _fails_with_a_secret_in_a_local()
    except RuntimeError:
        structlog.get_logger("canary-engine").exception("crashed")
    text = channels.assert_clean()
    assert "request failed" in text and "_fails_with_a_secret_in_a_local" in text


def test_console_output_is_redacted_too(channels: Channels) -> None:
    logs.configure("console", "info")
    structlog.get_logger("canary-engine").error("alert_not_sent", error=f"Bearer {TOKEN}")
    text = channels.assert_clean()
    assert "alert_not_sent" in text and "error='Bearer " in text  # the line was printed, masked


def test_a_querys_repr_does_not_show_its_headers() -> None:
    # A MetricTemplate's provider headers may carry a credential; a MetricQuery or a Check that
    # ends up in a log line or an error message is printed with its repr.
    from analysis import Endpoint, MetricQuery
    from analysis._types import CheckKind

    endpoint = Endpoint(server="http://prom:9090", headers={"Authorization": "Bearer s3cr3t"})
    query = MetricQuery(canary="ns/app", metric="m", kind=CheckKind.TEMPLATE, endpoint=endpoint)
    assert "s3cr3t" not in repr(query) and "s3cr3t" not in repr(endpoint)
    assert "http://prom:9090" in repr(endpoint)  # what is not secret still shows
