"""The HTTP webhook caller: Flagger's payload, any 2xx is success (Q2), retries, timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

import config
from analysis import HttpWebhookCaller, open_webhook_caller, webhook_payload

URL = "http://loadtester.test/hook"
PAYLOAD = webhook_payload("podinfo", "test", "Progressing", "abc123", {"cmd": "hey -z 1m"})


class Sleeps:
    """Records backoff sleeps instead of waiting (the engine clock's sleep in production)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _hook(**fields: object) -> config.Webhook:
    return config.Webhook.model_validate({"name": "load-test", "url": URL, **fields})


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def caller(sleeps: Sleeps) -> AsyncIterator[HttpWebhookCaller]:
    async with open_webhook_caller(sleep=sleeps) as opened:
        yield opened


def test_payload_is_flaggers_and_omits_empty_metadata() -> None:
    assert PAYLOAD == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc123",
        "metadata": {"cmd": "hey -z 1m"},
    }
    bare = webhook_payload("podinfo", "test", config.Phase.SUCCEEDED, "abc123", {})
    assert bare == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Succeeded",
        "checksum": "abc123",
    }


@pytest.mark.parametrize("status", [200, 201, 202, 203, 204, 299])
@respx.mock
async def test_any_2xx_is_success(caller: HttpWebhookCaller, status: int) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(status, text="ignored"))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert outcome.ok and outcome.message == ""
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == PAYLOAD


@pytest.mark.parametrize("status", [400, 403, 404, 409, 501])
@respx.mock
async def test_client_errors_fail_at_once_with_the_body(
    caller: HttpWebhookCaller, sleeps: Sleeps, status: int
) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(status, text="  gate closed \n"))
    outcome = await caller.call(_hook(retries=3), PAYLOAD)
    assert not outcome.ok
    assert outcome.message == "gate closed"
    assert route.call_count == 1  # 4xx (and 501) are not retried
    assert sleeps.calls == []


@respx.mock
async def test_empty_error_body_reports_the_status(caller: HttpWebhookCaller) -> None:
    respx.post(URL).mock(return_value=httpx.Response(403))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert outcome.message == "HTTP 403 Forbidden"


@respx.mock
async def test_server_error_without_retries_fails_with_the_body(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(500, text="load test failed"))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert not outcome.ok
    assert outcome.message == f"POST {URL} giving up after 1 attempt(s): load test failed"
    assert route.call_count == 1
    assert sleeps.calls == []


@respx.mock
async def test_retries_with_exponential_backoff_then_success(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    route = respx.post(URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200)]
    )
    outcome = await caller.call(_hook(retries=3), PAYLOAD)
    assert outcome.ok
    assert route.call_count == 3
    assert sleeps.calls == [1.0, 2.0]


@respx.mock
async def test_retries_exhausted_gives_up(caller: HttpWebhookCaller, sleeps: Sleeps) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(500, text="still broken"))
    outcome = await caller.call(_hook(retries=2), PAYLOAD)
    assert not outcome.ok
    assert outcome.message == f"POST {URL} giving up after 3 attempt(s): still broken"
    assert route.call_count == 3
    assert sleeps.calls == [1.0, 2.0]


async def test_backoff_is_capped(sleeps: Sleeps) -> None:
    def always_500(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    async with open_webhook_caller(
        sleep=sleeps, backoff_max=5.0, transport=httpx.MockTransport(always_500)
    ) as caller:
        await caller.call(_hook(retries=5), PAYLOAD)
    assert sleeps.calls == [1.0, 2.0, 4.0, 5.0, 5.0]


@respx.mock
async def test_too_many_requests_honours_retry_after(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    respx.post(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(202)]
    )
    outcome = await caller.call(_hook(retries=1), PAYLOAD)
    assert outcome.ok
    assert sleeps.calls == [7.0]


@respx.mock
async def test_connection_error_is_retried(caller: HttpWebhookCaller, sleeps: Sleeps) -> None:
    respx.post(URL).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(200)]
    )
    outcome = await caller.call(_hook(retries=1), PAYLOAD)
    assert outcome.ok
    assert sleeps.calls == [1.0]


@respx.mock
async def test_connection_error_without_retries_reports_the_transport_error(
    caller: HttpWebhookCaller,
) -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("connection refused"))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert not outcome.ok
    assert outcome.message == (
        f"POST {URL} giving up after 1 attempt(s): ConnectError: connection refused"
    )


@respx.mock
async def test_timeout_bounds_each_attempt_and_a_timed_out_attempt_is_retried(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    # As Flagger's retrying client (the timeout is its http.Client's): with retries 2 a hook that
    # never answers is tried three times, 20ms each, with the backoff between them.
    tried: list[httpx.Request] = []

    async def never_answers(request: httpx.Request) -> httpx.Response:
        tried.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    respx.post(URL).mock(side_effect=never_answers)
    outcome = await caller.call(_hook(timeout="20ms", retries=2), PAYLOAD)
    assert not outcome.ok
    assert outcome.message == f"POST {URL} timed out after 20ms (3 attempt(s))"
    assert len(tried) == 3 and sleeps.calls == [1.0, 2.0]


@respx.mock
async def test_a_hook_slow_once_then_answering_passes(caller: HttpWebhookCaller) -> None:
    # The timeout bounded the whole call, retries included: a hook that timed out once failed
    # the check, where Flagger (timeout per attempt) retries it and passes.
    answers = iter(["hang", "ok"])

    async def slow_then_fine(request: httpx.Request) -> httpx.Response:
        if next(answers) == "hang":
            await asyncio.Event().wait()
        return httpx.Response(200)

    respx.post(URL).mock(side_effect=slow_then_fine)
    outcome = await caller.call(_hook(timeout="50ms", retries=1), PAYLOAD)
    assert outcome.ok, outcome.message


@respx.mock
async def test_transport_timeout_is_a_failure_with_its_reason(caller: HttpWebhookCaller) -> None:
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("read timed out"))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert not outcome.ok
    assert "ReadTimeout: read timed out" in outcome.message


async def test_disable_tls_uses_the_unverified_client(sleeps: Sleeps) -> None:
    def verified(request: httpx.Request) -> httpx.Response:
        return httpx.Response(495, text="certificate rejected")

    def unverified(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(verified)) as secure,
        httpx.AsyncClient(transport=httpx.MockTransport(unverified)) as insecure,
    ):
        caller = HttpWebhookCaller(secure, insecure, sleep=sleeps)
        assert (await caller.call(_hook(disableTLS=True), PAYLOAD)).ok
        refused = await caller.call(_hook(), PAYLOAD)
        assert refused.message == "certificate rejected"


async def test_unsupported_url_fails_without_retrying(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    outcome = await caller.call(_hook(url="ftp://loadtester.test/", retries=3), PAYLOAD)
    assert not outcome.ok
    assert "UnsupportedProtocol" in outcome.message
    assert sleeps.calls == []


@respx.mock
async def test_password_in_url_is_not_echoed(caller: HttpWebhookCaller) -> None:
    secret_url = "http://user:s3cret@loadtester.test/hook"
    respx.post("http://loadtester.test/hook").mock(return_value=httpx.Response(500))
    outcome = await caller.call(_hook(url=secret_url), PAYLOAD)
    assert "s3cret" not in outcome.message
    assert "giving up after 1 attempt(s)" in outcome.message


@respx.mock
async def test_a_retry_after_of_unicode_digits_is_ignored_not_a_crash(
    caller: HttpWebhookCaller, sleeps: Sleeps
) -> None:
    # "²".isdigit() is True, float("²") is an error: the tick crashed and called the hook again
    respx.post(URL).mock(
        return_value=httpx.Response(503, headers={"Retry-After": "²".encode("latin-1")})
    )
    outcome = await caller.call(_hook(retries=1), PAYLOAD)
    assert not outcome.ok and "giving up after 2 attempt(s)" in outcome.message
    assert sleeps.calls == [1.0]  # the back-off, not the header


@respx.mock
async def test_only_the_head_of_a_huge_error_answer_is_read(caller: HttpWebhookCaller) -> None:
    async def gigabyte() -> AsyncIterator[bytes]:  # were it all read
        for _ in range(16 * 1024):
            yield b"x" * 65536

    respx.post(URL).mock(return_value=httpx.Response(500, content=gigabyte()))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert not outcome.ok and outcome.message.endswith("…") and len(outcome.message) <= 2000


@respx.mock
@pytest.mark.parametrize("status", [307, 308])
async def test_a_redirect_to_another_origin_never_gets_the_payload(
    caller: HttpWebhookCaller, status: int
) -> None:
    # the payload's metadata often carries a token (hey -H 'Authorization: Bearer ...')
    respx.post(URL).mock(
        return_value=httpx.Response(status, headers={"Location": "http://elsewhere.test/hook"})
    )
    elsewhere = respx.post("http://elsewhere.test/hook").mock(return_value=httpx.Response(200))
    outcome = await caller.call(_hook(), PAYLOAD)
    assert not elsewhere.called
    assert not outcome.ok and "another origin; not followed" in outcome.message


@respx.mock
async def test_a_redirect_within_the_origin_is_followed(caller: HttpWebhookCaller) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(307, headers={"Location": "http://loadtester.test/v2"})
    )
    moved = respx.post("http://loadtester.test/v2").mock(return_value=httpx.Response(200))
    assert (await caller.call(_hook(), PAYLOAD)).ok
    assert json.loads(moved.calls.last.request.content) == PAYLOAD


@respx.mock
async def test_the_basic_credential_of_the_hooks_user_info_is_masked(
    caller: HttpWebhookCaller,
) -> None:
    # httpx sends user:password@ as Authorization: Basic base64(user:password); a server that
    # echoes the value must not put it in the event
    url = "http://user:S3cretPassw0rd@loadtester.test/hook"
    respx.post("http://loadtester.test/hook").mock(
        side_effect=lambda request: httpx.Response(
            401,
            text="invalid credentials " + request.headers["Authorization"].removeprefix("Basic "),
        )
    )
    outcome = await caller.call(_hook(url=url), PAYLOAD)
    assert "dXNlcjpTM2NyZXRQYXNzdzByZA" not in outcome.message and "xxxxx" in outcome.message
