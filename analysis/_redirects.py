"""Following a metric source's redirects without carrying its credentials elsewhere.

httpx drops ``Authorization`` when a redirect leaves the origin, but not the other headers a
request carries: a template's ``X-Api-Key``, SigNoz's ``SIGNOZ-API-KEY``, Datadog's
``DD-API-KEY``. Requests are therefore sent with ``follow_redirects=False`` and their redirects
followed here: within the same origin freely, to another origin (scheme, host or port) only when
the request carries nothing beyond ``Authorization`` and content negotiation.
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
) -> httpx.Response:
    """``response``, or the answer at the end of its redirects (at most ``MAX_REDIRECTS``; a
    3xx beyond them is returned as it is). ``who`` names the source in the refusal."""
    carried = {name.lower() for name in headers or {}} - _HARMLESS_HEADERS
    for _ in range(MAX_REDIRECTS):
        following = response.next_request
        if following is None:
            break
        here, there = origin(response.request.url), origin(following.url)
        if carried and there != here:
            raise QueryRejected(
                f"{who} redirected from {here} to {there}, another origin; not followed, so "
                "the request's credential headers stay with the address configured: set the "
                "address to the final one"
            )
        response = await client.send(following, follow_redirects=False)
    return response


def origin(url: httpx.URL) -> str:
    """``scheme://host[:port]``: what a message may name (paths and queries may hold keys)."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"
