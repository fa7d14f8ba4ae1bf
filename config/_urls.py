"""Whether a request could go to a URL at all, for input checked before any request is made."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_problem(address: str, *, schemes: tuple[str, ...] = ()) -> str | None:
    """Why no request can go to ``address`` (no host, a port that is no number or out of range,
    a scheme not in ``schemes`` when given), or None."""
    try:
        parts = urlsplit(address)
        port = parts.port  # ValueError when it is no number or out of range
    except ValueError as exc:
        return str(exc)
    if schemes and parts.scheme not in schemes:
        return f"expected {' or '.join(f'{s}://' for s in schemes)}"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 is out of range 1-65535"
    return None
