"""Alert payloads (exactly Flagger's JSON per provider) and the httpx sender: 2xx only, 5 s budget,
bearer token, proxies, redacted errors, never raising."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TypedDict

import httpx
import pytest
import respx

from engine.shell.alerts import (
    ALERT_TIMEOUT_SECONDS,
    AlertField,
    HttpAlertSender,
    alert_payload,
    discord_url,
    open_alert_sender,
)

FIELDS = (AlertField("Cluster", "prod-eu"), AlertField("Target", "Deployment/podinfo.test"))
SLACK = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"


class Common(TypedDict):
    message: str
    canary: str
    namespace: str


COMMON: Common = {"message": "Canary analysis completed", "canary": "podinfo", "namespace": "test"}


def _posted(route: respx.Route, index: int = -1) -> object:
    return json.loads(route.calls[index].request.content)


# -- payloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "color"), [("info", "good"), ("warn", "good"), ("error", "danger")]
)
def test_slack_payload(severity: str, color: str) -> None:
    payload = alert_payload(
        "slack",
        severity=severity,
        fields=FIELDS,
        channel="#deployments",
        username="Flagger",
        **COMMON,
    )
    assert payload == {
        "channel": "#deployments",
        "username": "Flagger",
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": "podinfo.test",
                "text": "Canary analysis completed",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "Cluster", "value": "prod-eu", "short": False},
                    {"title": "Target", "value": "Deployment/podinfo.test", "short": False},
                ],
            }
        ],
    }


def test_slack_payload_without_fields_has_an_empty_list() -> None:
    payload = alert_payload("slack", severity="info", **COMMON)
    assert payload["channel"] == "general" and payload["username"] == "flagger"
    assert payload["attachments"][0]["fields"] == []


def test_discord_payload_is_slacks() -> None:
    discord = alert_payload("discord", severity="error", fields=FIELDS, **COMMON)
    assert discord == alert_payload("slack", severity="error", fields=FIELDS, **COMMON)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("https://discord.com/api/webhooks/1/abc", "https://discord.com/api/webhooks/1/abc/slack"),
        ("https://discord.com/api/webhooks/1/abc/", "https://discord.com/api/webhooks/1/abc/slack"),
        (
            "https://discord.com/api/webhooks/1/abc/slack",
            "https://discord.com/api/webhooks/1/abc/slack",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait=true",
            "https://discord.com/api/webhooks/1/abc/slack?wait=true",
        ),
    ],
)
def test_discord_url_gets_the_slack_suffix(address: str, expected: str) -> None:
    assert discord_url(address) == expected


@pytest.mark.parametrize(("severity", "color"), [("info", "#0076D7"), ("error", "#FF0000")])
def test_rocket_payload(severity: str, color: str) -> None:
    payload = alert_payload("rocket", severity=severity, fields=FIELDS[:1], **COMMON)
    assert payload == {
        "channel": "general",
        "username": "flagger",
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": "podinfo.test",
                "text": "Canary analysis completed",
                "mrkdwn_in": ["text"],
                "fields": [{"title": "Cluster", "value": "prod-eu", "short": False}],
            }
        ],
    }


@pytest.mark.parametrize(("severity", "color"), [("warn", "0076D7"), ("error", "FF0000")])
def test_msteams_payload(severity: str, color: str) -> None:
    payload = alert_payload("msteams", severity=severity, fields=FIELDS, **COMMON)
    assert payload == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": color,
        "summary": "podinfo.test",
        "sections": [
            {
                "activityTitle": "Canary analysis completed",
                "activitySubtitle": "podinfo.test",
                "facts": [
                    {"name": "Cluster", "value": "prod-eu"},
                    {"name": "Target", "value": "Deployment/podinfo.test"},
                ],
            }
        ],
    }


def test_gchat_payload() -> None:
    payload = alert_payload("gchat", severity="error", fields=FIELDS, **COMMON)
    grey = "<font color=#848484><strong>{}</strong></font>"
    assert payload == {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": "podinfo.test",
                    "imageUrl": "https://flagger.app/favicon.png",
                },
                "sections": [
                    {
                        "widgets": [
                            {"textParagraph": {"text": grey.format("Canary analysis completed")}}
                        ]
                    },
                    {
                        "widgets": [
                            {"textParagraph": {"text": "Cluster<br>" + grey.format("prod-eu")}}
                        ]
                    },
                    {
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": "Target<br>" + grey.format("Deployment/podinfo.test")
                                }
                            }
                        ]
                    },
                ],
            }
        ]
    }


def test_unknown_type_has_no_payload() -> None:
    with pytest.raises(ValueError, match="unknown alert provider type 'pagerduty'"):
        alert_payload("pagerduty", severity="info", **COMMON)


# -- sending ----------------------------------------------------------------------------------


@pytest.fixture
async def sender() -> AsyncIterator[HttpAlertSender]:
    async with open_alert_sender() as opened:
        yield opened


@respx.mock
async def test_slack_post_with_bearer_token(sender: HttpAlertSender) -> None:
    route = respx.post(SLACK).respond(200, text="ok")
    error = await sender.send(
        "slack",
        SLACK,
        severity="info",
        fields=FIELDS,
        channel="#deployments",
        username="Flagger",
        token="xoxb-123",
        **COMMON,
    )
    assert error == ""
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer xoxb-123"
    assert request.headers["content-type"] == "application/json"
    assert _posted(route) == alert_payload(
        "slack",
        severity="info",
        fields=FIELDS,
        channel="#deployments",
        username="Flagger",
        **COMMON,
    )


@respx.mock
async def test_no_token_no_authorization_header_and_defaults(sender: HttpAlertSender) -> None:
    route = respx.post(SLACK).respond(200)
    assert (
        await sender.send("slack", SLACK, severity="info", channel="", username="", **COMMON) == ""
    )
    assert "authorization" not in route.calls.last.request.headers
    posted = _posted(route)
    assert isinstance(posted, dict)
    assert (posted["channel"], posted["username"]) == ("general", "flagger")


@respx.mock
async def test_token_is_only_sent_to_slack(sender: HttpAlertSender) -> None:
    route = respx.post("https://chat.example/hooks/x").respond(200)
    assert (
        await sender.send(
            "rocket", "https://chat.example/hooks/x", severity="info", token="t", **COMMON
        )
        == ""
    )
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_discord_posts_to_the_slack_endpoint(sender: HttpAlertSender) -> None:
    route = respx.post("https://discord.com/api/webhooks/1/abc/slack").respond(204)
    error = await sender.send(
        "discord", "https://discord.com/api/webhooks/1/abc", severity="error", **COMMON
    )
    assert error == ""
    posted = _posted(route)
    assert isinstance(posted, dict)
    assert posted["attachments"][0]["color"] == "danger"


@pytest.mark.parametrize("provider_type", ["msteams", "gchat", "rocket"])
@respx.mock
async def test_each_type_posts_its_payload(sender: HttpAlertSender, provider_type: str) -> None:
    url = f"https://hooks.example/{provider_type}"
    route = respx.post(url).respond(200)
    assert await sender.send(provider_type, url, severity="warn", fields=FIELDS, **COMMON) == ""
    assert _posted(route) == alert_payload(provider_type, severity="warn", fields=FIELDS, **COMMON)


@respx.mock
async def test_any_2xx_is_success(sender: HttpAlertSender) -> None:
    respx.post(SLACK).respond(202)
    assert await sender.send("slack", SLACK, severity="info", **COMMON) == ""


@respx.mock
async def test_non_2xx_is_a_redacted_error_with_the_body(sender: HttpAlertSender) -> None:
    respx.post(SLACK).respond(404, text="no_service\n")
    error = await sender.send("slack", SLACK, severity="info", **COMMON)
    assert error == "slack POST https://hooks.slack.com/… answered HTTP 404 Not Found: no_service"
    assert "SECRET" not in error


@respx.mock
async def test_only_the_head_of_a_huge_error_body_is_read(sender: HttpAlertSender) -> None:
    # a gigabyte read whole (and redacted whole) held the controller's memory and event loop
    sent = 0

    async def gigabyte() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(16 * 1024):
            sent += 65536
            yield b"x" * 65536

    respx.post(SLACK).mock(return_value=httpx.Response(500, content=gigabyte()))
    error = await sender.send("slack", SLACK, severity="info", **COMMON)
    assert error.startswith("slack POST https://hooks.slack.com/… answered HTTP 500")
    assert sent < 1024 * 1024


@respx.mock
async def test_long_error_bodies_are_clipped_to_one_line(sender: HttpAlertSender) -> None:
    respx.post(SLACK).respond(500, text="<html>\n" + "x" * 5000)
    error = await sender.send("slack", SLACK, severity="info", **COMMON)
    assert len(error) <= 500 and "\n" not in error and error.endswith("…")


@respx.mock
async def test_transport_error_is_returned_not_raised(sender: HttpAlertSender) -> None:
    respx.post(SLACK).mock(side_effect=httpx.ConnectError("connection refused"))
    error = await sender.send("slack", SLACK, severity="info", **COMMON)
    assert error == "slack POST https://hooks.slack.com/… failed: ConnectError: connection refused"


async def test_the_post_is_bounded_by_the_timeout() -> None:
    assert ALERT_TIMEOUT_SECONDS == 5.0

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200)

    async with open_alert_sender(timeout_seconds=0.05, transport=httpx.MockTransport(slow)) as s:
        error = await s.send(
            "msteams", "https://teams.example/webhook/abc", severity="info", **COMMON
        )
    assert error == "msteams POST https://teams.example/… timed out after 50ms"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", "slack: invalid hook URL (empty): expected an http(s) URL"),
        ("xoxb-not-a-url", "slack: invalid hook URL <URL without host>: expected an http(s) URL"),
        (
            "ftp://files.example/x",
            "slack: invalid hook URL ftp://files.example/…: expected an http(s) URL",
        ),
    ],
)
async def test_bad_addresses_are_reported(
    sender: HttpAlertSender, address: str, expected: str
) -> None:
    assert await sender.send("slack", address, severity="info", **COMMON) == expected


async def test_unknown_type_is_reported(sender: HttpAlertSender) -> None:
    error = await sender.send("pagerduty", SLACK, severity="info", **COMMON)
    accepted = "slack, msteams, discord, rocket, gchat"
    assert error == f"unknown alert provider type 'pagerduty'; accepted: {accepted}"


@respx.mock
async def test_proxy_gets_its_own_client_and_is_closed(sender: HttpAlertSender) -> None:
    route = respx.post(SLACK).respond(200)
    proxy = "http://proxy.internal:3128"
    assert await sender.send("slack", SLACK, severity="info", proxy=proxy, **COMMON) == ""
    assert await sender.send("slack", SLACK, severity="info", proxy=proxy, **COMMON) == ""
    assert route.call_count == 2
    proxied = sender._proxied[proxy]
    assert len(sender._proxied) == 1
    await sender.aclose()
    assert proxied.is_closed and sender._proxied == {}


async def test_bad_proxy_is_reported(sender: HttpAlertSender) -> None:
    error = await sender.send("slack", SLACK, severity="info", proxy="gopher://proxy", **COMMON)
    assert error.startswith("slack: invalid proxy URL gopher://proxy:")
