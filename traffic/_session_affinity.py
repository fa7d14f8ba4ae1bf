"""Session affinity (``analysis.sessionAffinity``): the cookies the Istio and Gateway API routers
set.

As Flagger: while the canary has traffic, responses from the canary carry
``Set-Cookie: <cookieName>=<value>; Max-Age=<maxAge>`` (plus the attributes asked for), and a
sticky route sends every request whose ``Cookie`` header holds that value to the canary, so a user
who reached the canary once stays on it. With ``primaryCookieName`` the primary's responses carry
their own cookie (``Max-Age`` = the analysis interval) and a sticky route keeps those users on the
primary. When the canary's weight returns to 0 (promotion or rollback), the sticky route instead
answers requests carrying the cookie with ``Set-Cookie: <cookieName>=<value>; Max-Age=-1``, which
deletes it: exactly Flagger's expiry, without the configured attributes (``expire_cookie``).

Flagger draws the value at random and keeps it in ``status.sessionAffinityCookie``. Here the
value is derived from the Canary's identity and the release under analysis
(``status.lastAppliedSpec``), so it is the same on every tick and after a restart, and a new
release gets a new cookie. The routers write no status; the engine writes Flagger's status fields
from ``status_cookies`` (scripts read ``previousSessionAffinityCookie`` to check the expiry).
Imports only ``config`` and the shared object helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from config import Canary
from config._spec import SessionAffinity
from traffic._objects import canary_uid

COOKIE_HEADER: Final = "Cookie"
SET_COOKIE_HEADER: Final = "Set-Cookie"


def affinity(canary: Canary) -> SessionAffinity | None:
    return canary.spec.effective_analysis.session_affinity


def _token(canary: Canary, side: str) -> str:
    uid = canary_uid(canary) or canary.ref
    release = (canary.status or {}).get("lastAppliedSpec") or ""
    return hashlib.sha256(f"{uid}/{release}/{side}".encode()).hexdigest()[:16]


def canary_cookie(canary: Canary) -> str:
    """``<cookieName>=<value>`` for the release under analysis."""
    sa = affinity(canary)
    assert sa is not None
    return f"{sa.cookie_name}={_token(canary, 'canary')}"


def primary_cookie(canary: Canary) -> str | None:
    sa = affinity(canary)
    if sa is None or not sa.primary_cookie_name:
        return None
    return f"{sa.primary_cookie_name}={_token(canary, 'primary')}"


def set_cookie(canary: Canary, cookie: str, max_age: int) -> str:
    """The ``Set-Cookie`` value: the cookie, ``Max-Age`` and the attributes asked for."""
    sa = affinity(canary)
    assert sa is not None
    parts = [cookie, f"Max-Age={max_age}"]
    if sa.domain:
        parts.append(f"Domain={sa.domain}")
    if sa.http_only:
        parts.append("HttpOnly")
    if sa.partitioned:
        parts.append("Partitioned")
    if sa.path:
        parts.append(f"Path={sa.path}")
    if sa.same_site:
        parts.append(f"SameSite={sa.same_site}")
    if sa.secure:
        parts.append("Secure")
    return "; ".join(parts)


def expire_cookie(cookie: str) -> str:
    """The ``Set-Cookie`` value that deletes ``cookie``, byte for byte Flagger's
    ``fmt.Sprintf("%s; %s=%d", previousCookie, "Max-Age", -1)`` (gateway_api.go,
    gateway_api_v1beta1.go, istio.go): no Domain/Path/SameSite/... attributes, unlike the cookie
    handed out while the canary has traffic (``set_cookie``)."""
    return f"{cookie}; Max-Age=-1"


def cookie_regex(cookie: str) -> str:
    """Flagger's ``Cookie`` header match, byte for byte: ``.*<name>.*<value>.*`` (the value is
    hex; a cookie name is an RFC 6265 token, whose ``.`` ``*`` ``+`` ``|`` ``^`` ``$`` would be
    read as regex, as in Flagger)."""
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


#: Flagger's status fields for the cookies.
CANARY_COOKIE_FIELD: Final = "sessionAffinityCookie"
PRIMARY_COOKIE_FIELD: Final = "primarySessionAffinityCookie"
PREVIOUS_COOKIE_FIELD: Final = "previousSessionAffinityCookie"


def status_cookies(canary: Canary, canary_weight: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` (the status fields canary-engine does not otherwise manage) with Flagger's
    cookie fields for the routes just written: while the canary has traffic, the cookies it and
    the primary hand out; once its weight is back to 0, the canary's cookie moves to
    ``previousSessionAffinityCookie`` (the one the routes now expire), as Flagger's routers do."""
    out = dict(fields)
    if affinity(canary) is None:
        return out
    if canary_weight > 0:
        out[CANARY_COOKIE_FIELD] = canary_cookie(canary)
        primary = primary_cookie(canary)
        if primary is not None:
            out[PRIMARY_COOKIE_FIELD] = primary
    elif out.get(CANARY_COOKIE_FIELD):
        out[PREVIOUS_COOKIE_FIELD] = out.pop(CANARY_COOKIE_FIELD)
        out.pop(PRIMARY_COOKIE_FIELD, None)
    return out


def cookie_to_expire(canary: Canary) -> str | None:
    """The cookie the routes delete once the canary's weight is back to 0, as Flagger's routers
    pick it: the one handed out in this run (``sessionAffinityCookie``), else the previous run's
    (``previousSessionAffinityCookie``); None while no cookie was ever handed out, and then there
    is no sticky route at all (Flagger's Reconcile writes none)."""
    status = canary.status or {}
    for field in (CANARY_COOKIE_FIELD, PREVIOUS_COOKIE_FIELD):
        value = status.get(field)
        if isinstance(value, str) and "=" in value:
            return value
    return None


def interval_seconds(canary: Canary) -> int:
    return int(canary.spec.effective_analysis.interval_seconds)
