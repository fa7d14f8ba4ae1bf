"""Post canary alerts to chat services: Flagger's notifier payloads and an httpx sender (§6).

Part of the shell (it does I/O); ``engine.shell.notify`` decides which alert goes where.

The payload builders are pure and produce exactly the JSON Flagger's ``pkg/notifier`` posts:

* ``slack``   -- ``{channel, username, icon_emoji, attachments: [{color, author_name, text,
  mrkdwn_in, fields}]}``, colour ``good`` (``danger`` for error); with a token the request carries
  ``Authorization: Bearer <token>``.
* ``discord`` -- the same Slack-compatible payload, posted to ``<address>/slack`` (Discord's Slack
  endpoint; the suffix is appended when missing).
* ``rocket``  -- the Slack payload with colours ``#0076D7`` / ``#FF0000`` (error).
* ``msteams`` -- a ``MessageCard``, theme ``0076D7`` / ``FF0000`` (error), one section of facts.
* ``gchat``   -- a card with a "Flagger" header, the message, then one section per field.

``open_alert_sender`` owns the ``httpx.AsyncClient``s: one direct client, plus one per proxy URL,
made when first needed (httpx fixes the proxy per client). Every post has a 5 s budget and only a
2xx answer is success. ``send`` never raises for a provider's failure: it returns "" when the post
was accepted, otherwise a one-line error text that the caller logs and moves on -- an alert never
fails a tick. The hook's address is its credential: the error shows only its scheme and host
(``https://hooks.slack.com/…``), and the provider's reply or the transport error is passed through
``analysis.redact`` with the address, its path and segments, the token and the proxy's user
info (a 404 page echoing the path, a 500 echoing ``Bearer xoxb-…``), then clipped. One of the
modules allowed to import httpx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from analysis import (
    HOOK_PATH_MASK,
    check_port,
    clip,
    hook_secrets,
    read_head,
    redact,
    remember,
    system_trust,
)
from config import format_go_duration

#: The AlertProvider ``spec.type`` values Flagger accepts (CRD enum).
ALERT_PROVIDER_TYPES: tuple[str, ...] = ("slack", "msteams", "discord", "rocket", "gchat")
#: Defaults Flagger applies at send time when the AlertProvider leaves them empty.
DEFAULT_ALERT_USERNAME = "flagger"
DEFAULT_ALERT_CHANNEL = "general"
#: Flagger bounds every notification post with a 5 s context.
ALERT_TIMEOUT_SECONDS = 5.0

_MAX_MESSAGE = 500  # an HTML error page does not belong in a log line
_GREY_BOLD = ("<font color=#848484><strong>", "</strong></font>")


@dataclass(frozen=True, slots=True)
class AlertField:
    """One name/value line of an alert (Slack field, Teams fact, Google Chat section)."""

    name: str
    value: str


# -- payloads (pure) --------------------------------------------------------------------------


#: (normal, error) attachment colours of the Slack-shaped payloads: Slack's (Discord posts the same
#: payload to its Slack-compatible endpoint) and Rocket.Chat's hex ones.
_SLACK_COLOURS = {
    "slack": ("good", "danger"),
    "discord": ("good", "danger"),
    "rocket": ("#0076D7", "#FF0000"),
}


def slack_payload(
    *,
    message: str,
    canary: str,
    namespace: str,
    fields: Sequence[AlertField],
    channel: str,
    username: str,
    color: str,
) -> dict[str, Any]:
    """Flagger's Slack payload (Discord's and Rocket.Chat's too, with their colours)."""
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",  # Flagger's SlackPayload always carries it (no omitempty)
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": f"{canary}.{namespace}",
                "text": message,
                "mrkdwn_in": ["text"],
                "fields": [{"title": f.name, "value": f.value, "short": False} for f in fields],
            }
        ],
    }


def msteams_payload(
    *,
    message: str,
    canary: str,
    namespace: str,
    severity: str,
    fields: Sequence[AlertField] = (),
) -> dict[str, Any]:
    """Flagger's MS Teams MessageCard."""
    target = f"{canary}.{namespace}"
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if severity == "error" else "0076D7",
        "summary": target,
        "sections": [
            {
                "activityTitle": message,
                "activitySubtitle": target,
                "facts": [{"name": f.name, "value": f.value} for f in fields],
            }
        ],
    }


def gchat_payload(
    *,
    message: str,
    canary: str,
    namespace: str,
    fields: Sequence[AlertField] = (),
) -> dict[str, Any]:
    """Flagger's Google Chat card (the severity does not change it)."""
    start, end = _GREY_BOLD
    sections = [_gchat_text(f"{start}{message}{end}")]
    sections += [_gchat_text(f"{f.name}<br>{start}{f.value}{end}") for f in fields]
    return {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": f"{canary}.{namespace}",
                    "imageUrl": "https://flagger.app/favicon.png",
                },
                "sections": sections,
            }
        ]
    }


def alert_payload(
    provider_type: str,
    *,
    message: str,
    canary: str,
    namespace: str,
    severity: str,
    fields: Sequence[AlertField] = (),
    channel: str = "",
    username: str = "",
) -> dict[str, Any]:
    """The payload for a provider type; ValueError for a type Flagger does not know.

    An empty ``channel`` / ``username`` is Flagger's default, ``general`` / ``flagger``. Only
    here: every alert (global notifier, AlertProvider, direct ``send``) is built by this
    function, and the values given elsewhere stay what was configured ("" when nothing was)."""
    colours = _SLACK_COLOURS.get(provider_type)
    if colours is not None:
        ok, error = colours
        return slack_payload(
            message=message,
            canary=canary,
            namespace=namespace,
            fields=fields,
            channel=channel or DEFAULT_ALERT_CHANNEL,
            username=username or DEFAULT_ALERT_USERNAME,
            color=error if severity == "error" else ok,
        )
    if provider_type == "msteams":
        return msteams_payload(
            message=message, canary=canary, namespace=namespace, severity=severity, fields=fields
        )
    if provider_type == "gchat":
        return gchat_payload(message=message, canary=canary, namespace=namespace, fields=fields)
    raise ValueError(_unknown_type(provider_type))


def discord_url(address: str) -> str:
    """Discord's Slack-compatible endpoint: ``<address>/slack`` unless it already ends so."""
    if address.endswith("/slack"):
        return address
    url = httpx.URL(address)
    return str(url.copy_with(path=url.path.rstrip("/") + "/slack"))


def _gchat_text(text: str) -> dict[str, Any]:
    return {"widgets": [{"textParagraph": {"text": text}}]}


# -- sending ----------------------------------------------------------------------------------


class AlertSender(Protocol):
    """Posts one alert to one chat provider; "" on success, else a readable error (never raises
    for the provider's own failures)."""

    async def send(
        self,
        provider_type: str,
        address: str,
        *,
        message: str,
        canary: str,
        namespace: str,
        severity: str,
        fields: Sequence[AlertField] = (),
        channel: str = "",
        username: str = "",
        token: str = "",
        proxy: str = "",
    ) -> str: ...


class HttpAlertSender:
    """AlertSender over httpx; build it with ``open_alert_sender``. Safe to share by tasks."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float = ALERT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._transport = transport
        self._proxied: dict[str, httpx.AsyncClient] = {}

    async def send(
        self,
        provider_type: str,
        address: str,
        *,
        message: str,
        canary: str,
        namespace: str,
        severity: str,
        fields: Sequence[AlertField] = (),
        channel: str = "",
        username: str = "",
        token: str = "",
        proxy: str = "",
    ) -> str:
        """POST the provider's payload to ``address``; "" when a 2xx came back, else why not.

        Empty ``channel`` / ``username`` are ``general`` / ``flagger`` (``alert_payload``).
        ``token`` is sent as ``Authorization: Bearer`` to Slack (the only notifier Flagger gives
        a token to). ``proxy`` routes the post through that HTTP(S) proxy.
        """
        if provider_type not in ALERT_PROVIDER_TYPES:
            return _unknown_type(provider_type)
        secrets = hook_secrets(address, token=token, proxy=proxy)
        remember(secrets)  # whatever httpx logs about this post is redacted too (engine.shell.logs)
        problem = _check_address(provider_type, address)
        if problem:
            return _clip(problem, secrets)
        url = discord_url(address) if provider_type == "discord" else address
        payload = alert_payload(
            provider_type,
            message=message,
            canary=canary,
            namespace=namespace,
            severity=severity,
            fields=fields,
            channel=channel,
            username=username,
        )
        headers = {"Authorization": f"Bearer {token}"} if token and provider_type == "slack" else {}
        try:
            client = self._client_for(proxy)
        except (ValueError, TypeError, httpx.InvalidURL) as exc:
            return _clip(f"{provider_type}: invalid proxy URL {_redact(proxy)}: {exc}", secrets)
        where = f"{provider_type} POST {_redact(url)}"
        try:
            async with asyncio.timeout(self._timeout):
                request = client.build_request("POST", url, json=payload, headers=headers)
                response = await client.send(request, stream=True)
                try:
                    ok = 200 <= response.status_code < 300
                    # only the head of an error answer: a server answering gigabytes must hold
                    # neither the memory nor the event loop (redacting it all took seconds)
                    body = "" if ok else (await read_head(response)).strip()
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return f"{where} timed out after {format_go_duration(self._timeout)}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return _clip(f"{where} failed: {detail}", secrets)
        if ok:
            return ""
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        return _clip(f"{where} answered {status}" + (f": {body}" if body else ""), secrets)

    def _client_for(self, proxy: str) -> httpx.AsyncClient:
        if not proxy:
            return self._client
        client = self._proxied.get(proxy)
        if client is None:
            check_port(httpx.URL(proxy))  # (its own: the hook's is checked before each request)
            client = _new_client(self._timeout, proxy=proxy, transport=self._transport)
            self._proxied[proxy] = client
        return client

    async def aclose(self) -> None:
        clients, self._proxied = list(self._proxied.values()), {}
        for client in clients:
            await client.aclose()


@asynccontextmanager
async def open_alert_sender(
    *,
    timeout_seconds: float = ALERT_TIMEOUT_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[HttpAlertSender]:
    """Open the HTTP client(s) for alerts and close them on exit.

    ``transport`` lets tests substitute an ``httpx.MockTransport`` (respx needs nothing). Go's
    client follows redirects, so ours does too.
    """
    async with _new_client(timeout_seconds, transport=transport) as client:
        sender = HttpAlertSender(client, timeout=timeout_seconds, transport=transport)
        try:
            yield sender
        finally:
            await sender.aclose()


def _new_client(
    timeout: float, *, proxy: str | None = None, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=system_trust(),
        follow_redirects=True,
        timeout=timeout,
        proxy=proxy or None,
        transport=transport,
        # every request, the redirects httpx follows too (analysis.check_port says why)
        event_hooks={"request": [_check_request_port]},
    )


async def _check_request_port(request: httpx.Request) -> None:
    check_port(request.url)


def _check_address(provider_type: str, address: str) -> str:
    # Flagger rejects a hook URL that url.ParseRequestURI cannot read; we want an absolute
    # http(s) URL, so a Secret holding a bare token instead of the URL is named as such.
    try:
        url = httpx.URL(address)
    except (httpx.InvalidURL, TypeError) as exc:
        return f"{provider_type}: invalid hook URL {_redact(address)}: {exc}"
    if url.scheme not in ("http", "https") or not url.host:
        shown = _redact(address) if address else "(empty)"
        return f"{provider_type}: invalid hook URL {shown}: expected an http(s) URL"
    return ""


def _unknown_type(provider_type: str) -> str:
    return (
        f"unknown alert provider type {provider_type!r}; "
        f"accepted: {', '.join(ALERT_PROVIDER_TYPES)}"
    )


def _redact(url: str) -> str:
    """Scheme and host only: a chat hook's path (and any user info) is its credential."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<unparsable URL>"
    if not parsed.host:
        return "<URL without host>"
    port = f":{parsed.port}" if parsed.port else ""
    rest = HOOK_PATH_MASK if parsed.path not in ("", "/") or parsed.query else ""
    return f"{parsed.scheme}://{parsed.host}{port}{rest}"


def _clip(message: str, secrets: Sequence[str]) -> str:
    """One log line: secrets redacted first (clipping first could leave half of one), then
    whitespace collapsed and the length bounded."""
    # (cut to a few times the limit first, so a long body costs the redaction little: redact
    # masks the head of a secret that cut split)
    return clip(" ".join(redact(clip(message, 4 * _MAX_MESSAGE), secrets).split()), _MAX_MESSAGE)
