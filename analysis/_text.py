"""Text helpers for the modules that talk HTTP: keep secrets and bulk out of messages.

``redact(text, secrets)`` is the one place that decides what a secret looks like. Every message
that may carry one -- an error built from a server's reply or a library's exception, a URL shown
in an event, a log line -- goes through it before it leaves the process. It masks:

* the strings the caller knows to be secret (a Secret's token or password, a chat hook's address
  and its path), also in their URL-encoded, ``+``-for-space and JSON-escaped forms;
* the user info of any URL (``https://user:pass@host`` -> ``https://user:xxxxx@host``; a bare
  ``https://token@host`` -> ``https://xxxxx@host``), also URL-encoded;
* the path and query of chat-provider hook URLs (Slack, MS Teams / Power Automate, Discord,
  Google Chat, Rocket.Chat ``/hooks/``): the whole path is the credential;
* ``Authorization:`` / ``Proxy-Authorization:`` header values, ``Bearer`` / ``Basic`` credentials,
  Slack tokens (``xoxb-…``) and ``token=`` / ``password=`` / ``key=`` / ``sig=`` style query or
  JSON values.

``url_secrets(url)`` names the secrets inside one URL (its user info and sensitive query values;
with ``whole=True`` also its path, segments and query: a chat hook's address), ``hook_secrets`` a
chat hook's (address, token, proxy) and ``header_secrets`` those of request headers, to pass to
``redact``. ``redact`` is idempotent and leaves text without secrets unchanged. ``remember`` adds
secrets that every log line is redacted with from then on (``engine.shell.logs``).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

#: What a masked secret reads as.
MASK = "xxxxx"
#: Known secrets shorter than this are not masked by value (they would mangle ordinary words);
#: the patterns still apply.
MIN_SECRET = 4
#: The mark ``clip`` leaves where it cut a text.
CUT = "…"
#: What a chat hook's path reads as once masked.
HOOK_PATH_MASK = "/…"

_SENSITIVE_NAME = (
    r"[a-z0-9_.-]*?(?:token|passw(?:or)?d|pwd|secret|api[_-]?key|apikey|key|sig|signature"
    r"|credentials?)"
)


class _Pattern:
    """A regular expression compiled on first use: the redaction patterns are many and large,
    and most processes (``validate`` of a valid file) never redact anything."""

    def __init__(self, pattern: str) -> None:
        self._source = pattern

    @functools.cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self._source)

    def search(self, text: str) -> re.Match[str] | None:
        return self._compiled.search(text)

    def sub(self, replacement: str | Callable[[re.Match[str]], str], text: str) -> str:
        return self._compiled.sub(replacement, text)


_SENSITIVE = _Pattern(rf"(?i)^{_SENSITIVE_NAME}$|auth|cookie")

# The scheme's length is bounded: unbounded, every word of a long dotted text would be rescanned.
_USERINFO = _Pattern(r"(?i)\b(?P<scheme>[a-z][a-z0-9+.-]{0,31}://)(?P<info>[^\s/?#\"'<>\[\]]+)@")
_ENCODED_USERINFO = _Pattern(
    r"(?i)(?P<scheme>%3A%2F%2F)(?P<info>(?:(?!%2F|%3F|%23|%40)[^\s/?#&\"'<>])+)%40"
)
_CHAT_HOOK = _Pattern(
    r"(?i)(?P<keep>https?(?:://|%3A%2F%2F)(?:[^\s/?#@\"'<>]+@)?(?:[a-z0-9-]+\.)*"
    r"(?:hooks\.slack\.com|webhook\.office\.com|outlook\.office(?:365)?\.com|logic\.azure\.com"
    r"|discord(?:app)?\.com|chat\.googleapis\.com)(?::[0-9]+)?)"
    r"(?P<rest>(?:/|%2F|\?|%3F)[^\s\"'<>]*)"
)
_ROCKET_HOOK = _Pattern(
    r"(?i)(?P<keep>https?(?:://|%3A%2F%2F)[^\s/?#\"'<>%]+)(?P<rest>(?:/|%2F)hooks(?:/|%2F)[^\s\"'<>]+)"
)
_AUTH_HEADER = _Pattern(
    r"(?i)\b(?P<name>(?:proxy-)?authorization)(?P<sep>[\"']?\s*[:=]\s*\[?[\"']?)"
    r"(?P<scheme>(?:bearer|basic|token|digest|negotiate|apikey)\s+)?(?P<value>[^\s\"',;}\]<>]+)"
)
#: Other credential headers written as ``Name: value`` where a header is written: at the start of
#: a line, right after a quote, or after curl's and hey's ``-H`` / ``--header`` (a load test's
#: ``-H 'X-Api-Key: ...'``, a ``Cookie:``); the value up to the end of the quoted text or line
#: is masked. Elsewhere such words are prose ("access token: expired", a metric ``auth-token``).
_CREDENTIAL_HEADER = _Pattern(
    r"(?im)(?:^|(?<=['\"])|(?<=-H )|(?<=-H=)|(?<=--header )|(?<=--header=))"
    r"(?P<name>(?:[a-z0-9]+-)*(?:api-?key|app(?:lication)?-key|auth-token"
    r"|access-token|private-token|session-token|token|secret|password|cookie))"
    r"(?P<sep>\s*:\s*)(?P<value>[^\s\"'<>][^\r\n\"'<>]*)"
)
_BEARER = _Pattern(r"(?i)\b(?P<scheme>bearer|basic)(?P<sep>\s+|%20|\+)(?P<value>[\w\-.~+/=%:]+)")
_SLACK_TOKEN = _Pattern(r"\b(?P<prefix>xox[a-z]|xapp)-[A-Za-z0-9-]+")
#: ``code`` too, in a query (Azure Functions' key is ``?code=``).
_QUERY_VALUE = _Pattern(
    rf"(?i)(?P<pre>^|[?&;])(?P<name>{_SENSITIVE_NAME}|code)(?P<eq>=)(?P<value>[^&\s#\"'<>;]+)"
)
_ENCODED_QUERY_VALUE = _Pattern(
    rf"(?i)(?P<pre>%3F|%26)(?P<name>{_SENSITIVE_NAME})(?P<eq>%3D)"
    r"(?P<value>(?:(?!%26|%23)[^&\s\"'<>])+)"
)
_QUOTED_VALUE = _Pattern(
    r"(?i)(?P<pre>(?P<q>[\"'])[a-z0-9_.-]*?(?:token|passw(?:or)?d|secret|api[_-]?key|[_-]key)(?P=q)"
    r"\s*:\s*(?P<q2>[\"']))(?P<value>[^\"'\r\n]+)(?P=q2)"
)
#: A hook path (or path segment) shorter than this is no credential: not masked by value (a real
#: hook's path holds a long random part; short ones are words such as "down" or "refused").
_MIN_PATH_SECRET = 8
#: Path segments of hook URLs that are structure, not credential.
_STRUCTURAL = frozenset(
    {
        "services",
        "webhook",
        "webhooks",
        "webhookb2",
        "incomingwebhook",
        "messages",
        "workflows",
        "triggers",
        "invoke",
        "manual",
        "paths",
    }
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret masked: the given ``secrets`` (and their encoded forms), then
    URL user info, chat hook paths, authorization headers, bearer/basic credentials, Slack tokens
    and sensitive query or JSON values (see the module docstring)."""
    if not text:
        return text
    known = secrets if isinstance(secrets, frozenset) else frozenset(secrets)
    variants = _variants(known)
    for variant in variants:
        text = text.replace(variant, MASK)
    if CUT in text and variants:
        text = _mask_cut_heads(text, variants)
    text = _USERINFO.sub(_mask_userinfo, text)
    text = _ENCODED_USERINFO.sub(_mask_userinfo, text)
    text = _CHAT_HOOK.sub(_mask_hook, text)
    text = _ROCKET_HOOK.sub(_mask_hook, text)
    text = _AUTH_HEADER.sub(_mask_auth_header, text)
    text = _CREDENTIAL_HEADER.sub(_mask_credential_header, text)
    text = _BEARER.sub(_mask_bearer, text)
    text = _SLACK_TOKEN.sub(lambda m: f"{m['prefix']}-{MASK}", text)
    for pattern in (_QUERY_VALUE, _ENCODED_QUERY_VALUE):
        text = pattern.sub(lambda m: f"{m['pre']}{m['name']}{m['eq']}{MASK}", text)
    return _QUOTED_VALUE.sub(lambda m: f"{m['pre']}{MASK}{m['q2']}", text)


def url_secrets(url: str | None, *, whole: bool = False) -> list[str]:
    """The secrets inside ``url``: the password of its user info (the user name when there is no
    password: a token) and the values of sensitive query parameters (``token``, ``key``, ...).

    ``whole=True`` is for an address that is itself the credential (a chat hook): its path, its
    query, every query value and every path segment that is not plain structure (nor shorter than
    8 characters) are added.
    """
    if not url:
        return []
    url = url.strip()
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return [url] if whole else []
    found: list[str] = []
    if password:
        found.append(password)
        # what an HTTP client sends for user:password@ (Authorization: Basic ...), which a
        # server may echo
        basic = f"{unquote(username or '')}:{unquote(password)}".encode()
        found.append(base64.b64encode(basic).decode())
    elif username:
        found.append(username)
    for name, value in parse_qsl(parts.query):
        if whole or _SENSITIVE.search(name):
            found.append(value)
    if whole:
        found += [parts.query, parts.fragment]
        found += [
            part
            for part in (parts.path.strip("/"), *parts.path.split("/"))
            if len(part) >= _MIN_PATH_SECRET and part.lower() not in _STRUCTURAL
        ]
        if not parts.hostname:  # not a URL at all (a bare token): all of it is the secret
            found.append(url)
    return list(dict.fromkeys(secret for secret in found if secret))


def hook_secrets(
    address: str | None, *, token: str | None = "", proxy: str | None = ""
) -> list[str]:
    """The secrets of a chat hook: its whole address (``url_secrets(whole=True)``), the bearer
    token sent with it and the user info of the proxy it goes through."""
    return [*url_secrets(address, whole=True), *url_secrets(proxy), *([token] if token else [])]


def header_secrets(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The values of credential-bearing headers (``Authorization``, ``X-Api-Key``, cookies...):
    the whole value and, for ``<scheme> <credential>``, the credential alone."""
    found: list[str] = []
    for name, value in headers:
        if _SENSITIVE.search(name.replace("-", "_")):
            found.append(value)
            scheme, _, credential = value.strip().partition(" ")
            if credential and scheme:
                found.append(credential.strip())
    return found


def redact_url(url: str) -> str:
    """The URL with any embedded credential (user info, chat hook path, token parameter) masked,
    so it can go into events and logs."""
    return redact(url)


def clip(message: str, limit: int) -> str:
    """At most ``limit`` characters, marked with an ellipsis (``CUT``) when cut."""
    return message if len(message) <= limit else message[: limit - 1] + CUT


_remembered: frozenset[str] = frozenset()


def remember(secrets: Iterable[str | None]) -> None:
    """Add to the secrets every log line is redacted with from now on (``engine.shell.logs`` passes
    ``remembered()`` to ``redact``). The alert sender names each hook before posting to it, so
    whatever a library logs about the request (httpx logs its URL) is masked too."""
    global _remembered
    new = {s for s in secrets if s and len(s.strip()) >= MIN_SECRET} - _remembered
    if new:
        _remembered = _remembered | new


def remembered() -> frozenset[str]:
    """The secrets ``remember`` was given so far."""
    return _remembered


@functools.lru_cache(maxsize=256)
def _variants(secrets: frozenset[str | None]) -> tuple[str, ...]:
    """Every form a secret may take in a message, longest first (so none leaves a tail)."""
    out: set[str] = set()
    for secret in secrets:
        if not secret or len(secret.strip()) < MIN_SECRET:
            continue
        for form in (secret, secret.strip(), unquote(secret)):
            out.update(
                (
                    form,
                    quote(form, safe=""),
                    quote(form, safe="/:@"),
                    quote_plus(form),
                    json.dumps(form)[1:-1],
                    # as Python's repr quotes it inside a text holding both quote characters
                    form.replace("\\", "\\\\").replace("'", "\\'"),
                    # as a str's or a bytes' repr shows control characters (b'Bearer t\x00')
                    repr(form)[1:-1],
                    repr(form.encode("utf-8", "backslashreplace"))[2:-1],
                    form.replace("/", "\\/"),
                    _encode_all(form),
                    _encode_all(form, lower=True),
                )
            )
    return tuple(sorted((v for v in out if len(v) >= MIN_SECRET), key=len, reverse=True))


def _mask_cut_heads(text: str, variants: tuple[str, ...]) -> str:
    """Mask the head of a secret that ``clip`` cut off just before its mark: a message clipped
    before it is redacted (a server's body cut to length, then quoted) would otherwise keep all
    of a secret but its last characters. Heads shorter than ``MIN_SECRET`` stay, as short
    secrets do."""
    pieces = text.split(CUT)
    for index, piece in enumerate(pieces[:-1]):
        longest = 0
        for variant in variants:
            for size in range(min(len(variant) - 1, len(piece)), longest, -1):
                if size < MIN_SECRET:
                    break
                if piece.endswith(variant[:size]):
                    longest = size
                    break
        if longest:
            pieces[index] = piece[:-longest] + MASK
    return CUT.join(pieces)


def _encode_all(text: str, *, lower: bool = False) -> str:
    """Every character but ASCII letters and digits percent-encoded (as some clients do)."""
    out = []
    for c in text:
        if c.isascii() and c.isalnum():
            out.append(c)
        else:
            encoded = "".join(f"%{byte:02X}" for byte in c.encode())
            out.append(encoded.lower() if lower else encoded)
    return "".join(out)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, info = match["scheme"], match["info"]
    colon, at = (":", "@") if "://" in scheme else ("%3A", "%40")
    if info == MASK or info.endswith(colon + MASK):
        return match[0]
    cut = info.upper().find(colon)
    if cut >= 0:  # user:password -- the user name stays readable
        return f"{scheme}{info[:cut]}{colon}{MASK}{at}"
    return f"{scheme}{MASK}{at}"  # a lone user name is often a token


def _mask_hook(match: re.Match[str]) -> str:
    rest = match["rest"]
    if rest in ("/", "%2F", "%2f") or rest.startswith(HOOK_PATH_MASK):
        return match[0]
    return match["keep"] + HOOK_PATH_MASK


def _mask_auth_header(match: re.Match[str]) -> str:
    if match["value"] == MASK:
        return match[0]
    return f"{match['name']}{match['sep']}{match['scheme'] or ''}{MASK}"


def _mask_credential_header(match: re.Match[str]) -> str:
    if match["value"].startswith(MASK):
        return match[0]
    return f"{match['name']}{match['sep']}{MASK}"


def _mask_bearer(match: re.Match[str]) -> str:
    value = match["value"]
    if value == MASK or not _looks_like_credential(value):
        return match[0]
    return f"{match['scheme']}{match['sep']}{MASK}"


def _looks_like_credential(value: str) -> bool:
    # "Bearer token" or "basic authentication" are words; a credential has digits or symbols
    # (base64, JWTs, xoxb-...) or is long.
    if len(value) >= 20:
        return True
    return len(value) >= 8 and any(not c.isalpha() for c in value)
