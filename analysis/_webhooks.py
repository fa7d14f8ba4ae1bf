"""Call Flagger webhooks over HTTP: the live WebhookCaller (flagger-behaviour §5.1).

POST the CanaryWebhookPayload as JSON; any 2xx answer is success (§12 Q2: Flagger accepts only
200-202). A failure's message is the response body (whitespace-trimmed), or the transport error.
``retries`` repeats the call with exponential backoff (1s, 2s, 4s ... capped at 30s; a 429/503
``Retry-After`` wins) on connection errors, 5xx and 429 only, like Flagger's retrying client, and
reports "giving up after N attempt(s)" when they are used up. The hook's ``timeout`` bounds
each attempt, as Flagger's retrying client does (it sets it on its ``http.Client``), and a
timed-out attempt is retried too: a call may take ``(retries + 1) × timeout`` plus the backoff.
``disableTLS`` skips certificate verification.

A failure's message never carries the hook's credentials: it goes through
``analysis._text.redact`` with the URL's user info and sensitive query values (a server or a proxy
may echo the URL, or an Authorization header, in its error body). Only the head of an error
answer is read (``analysis._answers``; a 2xx body not at all): a hook answering gigabytes must
not hold the controller's memory or its event loop. Redirects are followed as Go's client
does, except to another origin with the payload again (a 307/308): the payload's metadata may
carry credentials (``analysis._redirects``).

``open_webhook_caller`` owns the ``httpx.AsyncClient``s (one verifying, one not, because httpx
fixes verification per client); the engine never imports httpx. Backoff sleeps go through the
injected ``sleep`` so they follow the engine's clock. One of the two modules allowed to import
httpx (with the Prometheus adapter).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from analysis import _redirects as redirects
from analysis._answers import read_head
from analysis._errors import QueryRejected
from analysis._text import clip, redact, url_secrets
from analysis._trust import system_trust
from analysis._types import HookOutcome
from config import Webhook, format_go_duration

Sleep = Callable[[float], Awaitable[None]]

#: Exponential backoff bounds of Flagger's retrying client (hashicorp/go-retryablehttp defaults).
BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
_MAX_MESSAGE = 2000  # a whole HTML error page does not belong in a Kubernetes event


def webhook_payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build Flagger's CanaryWebhookPayload; ``metadata`` is left out when empty, like Flagger."""
    payload: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "phase": str(phase),
        "checksum": checksum,
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


class HttpWebhookCaller:
    """WebhookCaller over httpx; build it with ``open_webhook_caller``. Safe to share by tasks."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        insecure_client: httpx.AsyncClient,
        *,
        sleep: Sleep,
        backoff_min: float = BACKOFF_MIN_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
    ) -> None:
        self._client = client
        self._insecure = insecure_client
        self._sleep = sleep
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        """POST ``payload`` to the hook; never raises for the hook's own failures (I/O)."""
        timeout = hook.timeout_seconds
        client = self._insecure if hook.disable_tls else self._client
        attempts = 0
        while True:
            attempts += 1
            try:
                # Each attempt gets the whole timeout, as Flagger's retrying client sets it on
                # its http.Client: a hook that answers slowly once, then recovers, passes.
                async with asyncio.timeout(timeout):
                    outcome, delay = await self._attempt(client, hook, payload, attempts, timeout)
            except TimeoutError:
                if attempts <= hook.retries:  # a timed-out attempt is retried, as Go's is
                    outcome, delay = None, self._backoff(attempts)
                else:
                    return HookOutcome(
                        hook,
                        False,
                        _message(
                            hook,
                            f"POST {hook.url} timed out after {format_go_duration(timeout)} "
                            f"({attempts} attempt(s))",
                        ),
                    )
            if outcome is not None:
                return outcome
            await self._sleep(delay)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        hook: Webhook,
        payload: Mapping[str, Any],
        attempt: int,
        limit: float,
    ) -> tuple[HookOutcome | None, float]:
        """One POST: a final outcome, or (None, seconds to wait) when it should be retried."""
        can_retry = attempt <= hook.retries
        try:
            request = client.build_request("POST", hook.url, json=dict(payload), timeout=limit)
            redirects.check_port(request.url)
            response = await client.send(request, stream=True)
            try:
                response = await redirects.follow(
                    client, response, None, f"webhook {hook.name}", stream=True
                )
                status = response.status_code
                head = "" if 200 <= status < 300 else await read_head(response)
            finally:
                await response.aclose()
        except QueryRejected as exc:  # a redirect that would carry the payload elsewhere
            return HookOutcome(hook, False, _message(hook, str(exc))), 0.0
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not _retryable_transport(exc):
                return HookOutcome(hook, False, _message(hook, detail)), 0.0
            if can_retry:
                return None, self._backoff(attempt)
            return HookOutcome(hook, False, _message(hook, _giving_up(hook, attempt, detail))), 0.0
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return HookOutcome(hook, False, _message(hook, f"{type(exc).__name__}: {exc}")), 0.0

        if 200 <= status < 300:
            return HookOutcome(hook, True), 0.0
        body = head.strip() or f"HTTP {status} {response.reason_phrase}".rstrip()
        if not _retryable_status(status):
            return HookOutcome(hook, False, _message(hook, body)), 0.0
        if can_retry:
            return None, _retry_after(response) or self._backoff(attempt)
        return HookOutcome(hook, False, _message(hook, _giving_up(hook, attempt, body))), 0.0

    def _backoff(self, attempt: int) -> float:
        # go-retryablehttp's DefaultBackoff: min * 2^n for the n-th retry (n from 0), capped.
        return float(min(self._backoff_max, self._backoff_min * 2 ** (attempt - 1)))


@asynccontextmanager
async def open_webhook_caller(
    *,
    sleep: Sleep,
    backoff_min: float = BACKOFF_MIN_SECONDS,
    backoff_max: float = BACKOFF_MAX_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[HttpWebhookCaller]:
    """Open the HTTP clients for webhook calls and close them on exit.

    ``sleep`` is the engine clock's sleep (used between retries); ``transport`` lets tests
    substitute an ``httpx.MockTransport``. Go's client follows redirects, so ours do too (not a
    307/308 to another origin, which would send the payload there).
    """
    async with (
        # redirects are followed by analysis._redirects, which keeps the payload in its origin
        httpx.AsyncClient(verify=system_trust(), transport=transport) as client,
        httpx.AsyncClient(verify=False, transport=transport) as insecure,
    ):
        yield HttpWebhookCaller(
            client, insecure, sleep=sleep, backoff_min=backoff_min, backoff_max=backoff_max
        )


def _retryable_status(status: int) -> bool:
    # As go-retryablehttp's DefaultRetryPolicy: 429 and 5xx except 501 Not Implemented.
    return status == 429 or (status >= 500 and status != 501)


def _retryable_transport(exc: httpx.TransportError) -> bool:
    # A wrong scheme or an untrusted certificate will not fix itself between attempts.
    if isinstance(exc, httpx.UnsupportedProtocol):
        return False
    cause: BaseException | None = exc
    seen: set[int] = set()  # exception chains can loop (a cause whose context is the effect)
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    # isdigit alone takes "²" (a digit to Unicode, not to float)
    return float(value) if value.isascii() and value.isdigit() else None


def _giving_up(hook: Webhook, attempts: int, detail: str) -> str:
    return f"POST {hook.url} giving up after {attempts} attempt(s): {detail}"


def _message(hook: Webhook, message: str) -> str:
    """An outcome message: the hook's credentials redacted, then clipped (in that order, so a
    clip cannot leave half a secret behind; cut to a few times the limit first, so a long body
    costs the redaction little, and redact masks the head of a secret that cut split)."""
    return clip(redact(clip(message, 4 * _MAX_MESSAGE), url_secrets(hook.url)), _MAX_MESSAGE)
