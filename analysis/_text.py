"""Text helpers for the modules that talk HTTP: keep secrets and bulk out of messages."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL with any embedded password replaced, so it can go into events and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:xxxxx@{host}{port}"))


def clip(message: str, limit: int) -> str:
    """At most ``limit`` characters, marked with an ellipsis when cut."""
    return message if len(message) <= limit else message[: limit - 1] + "…"
