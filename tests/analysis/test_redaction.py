"""``analysis._text.redact`` and friends: what counts as a secret, and that nothing else changes."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from analysis._text import (
    MASK,
    header_secrets,
    hook_secrets,
    redact,
    redact_url,
    url_secrets,
)

SECRET = "S3CR3T-xyz/+=!"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://user:pa55@prom:9090/x", "GET http://user:xxxxx@prom:9090/x"),
        ("https://admin:p%40ss@h/", "https://admin:xxxxx@h/"),
        ("http://glsa_T0k3n@prom.test:9090 down", "http://xxxxx@prom.test:9090 down"),
        ("(url='https://u:pw@host')", "(url='https://u:xxxxx@host')"),
        ('{"url": "https://u:pw@host/a"}', '{"url": "https://u:xxxxx@host/a"}'),
        ("next=https%3A%2F%2Fu%3Apw%40host%2Fa", "next=https%3A%2F%2Fu%3Axxxxx%40host%2Fa"),
        ("redis://:pw@cache:6379", "redis://:xxxxx@cache:6379"),
    ],
)
def test_user_info_is_masked_in_any_url(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://hooks.slack.com/services/T0/B0/abcDEF123", "https://hooks.slack.com/…"),
        (
            "https://acme.webhook.office.com/webhookb2/1-2@3/IncomingWebhook/ab/cd",
            "https://acme.webhook.office.com/…",
        ),
        ("https://outlook.office.com/webhook/abc", "https://outlook.office.com/…"),
        ("https://discord.com/api/webhooks/1/tok/slack", "https://discord.com/…"),
        ("https://discordapp.com/api/webhooks/1/tok", "https://discordapp.com/…"),
        (
            "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t",
            "https://chat.googleapis.com/…",
        ),
        ("https://rocket.example.com/hooks/id/tok", "https://rocket.example.com/…"),
        ("https%3A%2F%2Fhooks.slack.com%2Fservices%2FT%2FB%2Fx", "https%3A%2F%2Fhooks.slack.com/…"),
    ],
)
def test_chat_hook_paths_are_masked(url: str, kept: str) -> None:
    assert redact(f"POST {url} failed") == f"POST {kept} failed"


def test_a_masked_hook_url_stays_as_it_is() -> None:
    assert redact("slack POST https://hooks.slack.com/… answered") == (
        "slack POST https://hooks.slack.com/… answered"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer xxxxx"),
        ("authorization=Basic dXNlcjpwdw==", "authorization=Basic xxxxx"),
        ("{'Authorization': 'Bearer t0k3n'}", "{'Authorization': 'Bearer xxxxx'}"),
        ('{"authorization":"tok-123"}', '{"authorization":"xxxxx"}'),
        ("Proxy-Authorization: Basic Zm9vOmJhcg==", "Proxy-Authorization: Basic xxxxx"),
        ("Authorization:[Bearer t0k3n-1]", "Authorization:[Bearer xxxxx]"),
        ("rejected Bearer eyJhbGciOi.J9.x", "rejected Bearer xxxxx"),
        ("bearer%20abc123def", "bearer%20xxxxx"),
        ("got Basic dXNlcjpTM0NSM1Q=", "got Basic xxxxx"),
    ],
)
def test_authorization_headers_and_bearer_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "token", ["xoxb-123-456-abcDEF", "xoxp-1-2-3", "xoxa-2-x", "xoxr-a", "xapp-1-A-b"]
)
def test_slack_tokens_are_masked(token: str) -> None:
    prefix = token.split("-")[0]
    assert redact(f"invalid_auth for {token}.") == f"invalid_auth for {prefix}-{MASK}."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/api?query=up&token=abc123&x=1", "/api?query=up&token=xxxxx&x=1"),
        ("?password=hunter2", "?password=xxxxx"),
        ("https://h/p?access_token=a&sig=b", "https://h/p?access_token=xxxxx&sig=xxxxx"),
        ("api_key=k1&user=me", "api_key=xxxxx&user=me"),
        (
            "u=https%3A%2F%2Fh%2Fp%3Fx%3D1%26token%3Dabc",
            "u=https%3A%2F%2Fh%2Fp%3Fx%3D1%26token%3Dxxxxx",
        ),
        ('{"password": "hunter22", "user": "x"}', '{"password": "xxxxx", "user": "x"}'),
        ("{'client_secret': 'abc'}", "{'client_secret': 'xxxxx'}"),
    ],
)
def test_sensitive_query_and_json_values_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_known_secrets_are_masked_in_every_encoding() -> None:
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        SECRET.replace("/", "\\/"),
        "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in SECRET),
        "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in SECRET),
    ]
    text = " | ".join(forms)
    out = redact(text, [SECRET])
    assert "S3CR3T" not in out
    assert out == " | ".join([MASK] * len(forms))


def test_an_encoded_known_secret_is_recognised_decoded() -> None:
    assert redact("echo S3CR3T-xyz/+=!", [quote(SECRET, safe="")]) == "echo xxxxx"


def test_longer_secrets_go_first_so_no_tail_is_left() -> None:
    assert redact("abcd-efgh-ijkl", ["abcd", "abcd-efgh-ijkl"]) == MASK


def test_short_or_empty_secrets_do_not_mangle_text() -> None:
    assert redact("a b abc", ["a", "abc", "", None]) == "a b abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a load test's command, repeated by the load tester in its error, then in an event
        (
            "command hey -z 1m -H 'X-Api-Key: s3cr3tvalue' http://web/ failed: exit status 1",
            "command hey -z 1m -H 'X-Api-Key: xxxxx' http://web/ failed: exit status 1",
        ),
        ("curl -H 'Cookie: session=abc; theme=dark' x", "curl -H 'Cookie: xxxxx' x"),
        ('-H "X-Auth-Token: t0k3n" -H "Accept: */*"', '-H "X-Auth-Token: xxxxx" -H "Accept: */*"'),
        ("Private-Token: glpat-123456", "Private-Token: xxxxx"),
        ("DD-API-KEY: abc DD-APPLICATION-KEY: def", "DD-API-KEY: xxxxx"),
        (
            "https://f.azurewebsites.net/api/hook?code=Zk9x1&x=1",
            "https://f.azurewebsites.net/api/hook?code=xxxxx&x=1",
        ),
        (
            '-d \'{"routing_key": "R0UT1NG", "event_action": "trigger"}\'',
            '-d \'{"routing_key": "xxxxx", "event_action": "trigger"}\'',
        ),
    ],
)
def test_other_credential_headers_and_keys_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no_service",
        "internal error",
        "the bearer token is invalid; basic authentication required",
        "authorization failed",
        "connection refused: [Errno 111] Connection refused",
        "metric 'request-success-rate' (canary) query 'sum(rate(x{a=\"b\"}[1m]))'",
        "POST http://loadtester.test/hook giving up after 3 attempt(s): HTTP 503",
        "prometheus http://prom.test:9090 did not answer within 5s",
        "https://example.com/path?q=1&page=2",
        "canary 150 2m ago above the primary's 24h before the analysis (median 100, bound 110)",
        "alert provider slack.test secretRef: secret missing.test not found",
        "a user@example.com address and key = value",
        "Content-Type: application/json; Accept: */*",
        "cannot get a Google access token: invalid_grant",
        "Metric query failed for auth-token: 503 Service Unavailable",
        "custom metric: session-token: no values found",
        "Command promote (3f2a9c1e) for web.secret: promoting web.secret",
        "HTTP status code=503 from the primary-key: lookup",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    text = (
        "POST https://u:pw@hooks.slack.com/services/T/B/x Authorization: Bearer xoxb-1-2 "
        "?token=abc S3CR3T-xyz"
    )
    once = redact(text, ["S3CR3T-xyz"])
    assert redact(once, ["S3CR3T-xyz"]) == once
    assert "pw" not in once and "xoxb-1" not in once and "abc" not in once


def test_url_secrets_of_an_address() -> None:
    # the password, and the Basic credential a client sends for it (base64 of user:p@ss)
    assert url_secrets("http://user:p%40ss@h:1/x") == ["p%40ss", "dXNlcjpwQHNz"]
    assert url_secrets("http://T0k3nValue@h") == ["T0k3nValue"]
    assert url_secrets("http://h/x?token=t0k&page=2") == ["t0k"]
    assert url_secrets("http://h/x") == []
    assert url_secrets("") == [] and url_secrets(None) == []


def test_url_secrets_of_a_hook_address() -> None:
    found = url_secrets("https://hooks.slack.com/services/T0/B0/S3CR3T-xyz", whole=True)
    assert "services/T0/B0/S3CR3T-xyz" in found and "S3CR3T-xyz" in found
    assert "services" not in found and "T0" not in found
    gchat = url_secrets(
        "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k1&token=t1", whole=True
    )
    assert {"k1", "t1", "key=k1&token=t1"} <= set(gchat)
    # short paths are words ("down", "refused"), not credentials
    assert url_secrets("https://hooks.example/refused", whole=True) == []
    # not a URL at all (a Secret holding a bare token): all of it is the secret
    assert url_secrets("xoxb-not-a-url", whole=True) == ["xoxb-not-a-url"]


def test_hook_and_header_secrets() -> None:
    found = hook_secrets(
        "https://rocket.example.com/hooks/abc/S3CR3T-xyz",
        token="tok-123",
        proxy="http://p:proxy-pw@proxy:3128",
    )
    assert {"hooks/abc/S3CR3T-xyz", "S3CR3T-xyz", "tok-123", "proxy-pw"} <= set(found)
    headers = [
        ("Authorization", "Bearer abc123"),
        ("X-Api-Key", "k3y-value"),
        ("X-Auth-Token", "t"),
        ("Content-Type", "application/json"),
        ("X-Scope-OrgID", "tenant-1"),
    ]
    assert header_secrets(headers) == ["Bearer abc123", "abc123", "k3y-value", "t"]


def test_basic_credentials_from_a_url_are_masked_once_encoded() -> None:
    pair = base64.b64encode(b"user:S3CR3T-xyz").decode()
    assert redact(f"401: header was Authorization: Basic {pair}") == (
        "401: header was Authorization: Basic xxxxx"
    )


def test_redact_url_keeps_its_contract() -> None:
    assert redact_url("http://admin:s3cret@prom.test:9090") == "http://admin:xxxxx@prom.test:9090"
    assert redact_url("http://prom.test:9090") == "http://prom.test:9090"
    assert redact_url("not a url") == "not a url"


def test_a_secret_shown_by_a_bytes_repr_is_masked() -> None:
    # h11 refuses a header holding a control character and quotes it as bytes in its error
    token = "xoxpSECRETTOKEN\x00"
    message = f"LocalProtocolError: Illegal header value {('Bearer ' + token).encode()!r}"
    assert redact(message, [token]) == "LocalProtocolError: Illegal header value b'Bearer xxxxx'"


def test_the_head_of_a_secret_cut_by_clip_is_masked() -> None:
    secret = "SIGNOZKEY-abcdefghijklmnopqrstuvwxyz0123456789"
    assert redact("401: " + secret[:12] + "…", [secret]) == "401: xxxxx…"
    assert redact("401: " + secret[:3] + "…", [secret]) == "401: SIG…"  # too short to be one
    assert redact("a word… and more", [secret]) == "a word… and more"
