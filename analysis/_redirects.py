"""Following a metric source's redirects without carrying its credentials elsewhere.

httpx drops ``Authorization`` when a redirect leaves the origin, but not the other headers a
request carries: a template's ``X-Api-Key``, SigNoz's ``SIGNOZ-API-KEY``, Datadog's
``DD-API-KEY``. Requests are therefore sent with ``follow_redirects=False`` and their redirects
followed here: within the same origin freely, to another origin (scheme, host or port) only when
the request carries nothing beyond ``Authorization`` and content negotiation, and no body: a 307
or 308 sends the body again, and a body may be the credential itself (Azure's token request
posts the client secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from analysis._errors import QueryRejected

if TYPE_CHECKING:
    import httpx

#: Redirects followed per request (httpx's own default is 20).
MAX_REDIRECTS = 5
#: Headers a request may carry to another origin: httpx drops Authorization itself.
_HARMLESS_HEADERS = frozenset({"authorization", "content-type", "accept", "user-agent"})


async def follow(
    client: httpx.AsyncClient,
    response: httpx.Response,
    headers: Mapping[str, str] | None,
    who: str,
    *,
    stream: bool = False,
) -> httpx.Response:
    """``response``, or the answer at the end of its redirects (at most ``MAX_REDIRECTS``; a
    3xx beyond them is returned as it is). ``who`` names the source in the refusal; ``stream``:
    the answers followed are streamed, as ``response`` was (the caller reads the body)."""
    carried = carried_headers(headers)
    for _ in range(MAX_REDIRECTS):
        following = response.next_request
        if following is None:
            break
        here, there = origin(response.request.url), origin(following.url)
        if there != here and (carried or _has_body(following)):
            raise QueryRejected(
                f"{who} redirected from {here} to {there}, another origin; not followed, so "
                "the request's credentials stay with the address configured: set the address "
                "to the final one"
            )
        await response.aclose()
        check_port(following.url)  # the server's Location may name any port
        response = await client.send(following, stream=stream, follow_redirects=False)
    if response.next_request is not None:  # still redirecting: a loop, or a chain too long
        here = origin(response.request.url)
        await response.aclose()
        raise QueryRejected(
            f"{who} redirected more than {MAX_REDIRECTS} times (last from {here}); not "
            "followed further: set the address to the final one"
        )
    return response


def check_port(url: httpx.URL) -> None:
    """Raise ``httpx.InvalidURL`` when ``url`` names a port no connection can go to. httpx reads
    any number as a port, and connecting to ``:99999`` or ``:-1`` raised an ExceptionGroup (an
    OverflowError inside anyio), no httpx error: it escaped every caller's handling, and a
    webhook URL with such a port crashed each tick of its Canary. Call before each send."""
    import httpx

    port = url.port
    if port is not None and not 0 < port < 65536:
        raise httpx.InvalidURL(f"port {port} is out of range 1-65535")


def carried_headers(headers: Mapping[str, str] | None) -> set[str]:
    """The headers of a request that must not go to another origin (lower-cased names)."""
    return {name.lower() for name in headers or {}} - _HARMLESS_HEADERS


def _has_body(request: httpx.Request) -> bool:
    # httpx drops the body (and these headers) when a redirect turns the method into GET
    length = request.headers.get("content-length", "0")
    return length != "0" or "transfer-encoding" in request.headers


def origin(url: httpx.URL) -> str:
    """``scheme://host[:port]``: what a message may name (paths and queries may hold keys)."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"
