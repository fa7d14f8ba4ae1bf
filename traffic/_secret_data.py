"""A Secret's ``data`` as text: the one decoding every reader of Secrets uses.

Kubernetes stores each value of a Secret's ``data`` base64-encoded. The controller's metric
provider credentials, the alert providers' addresses and ``record``'s Secrets from manifest files
all go through ``decode_secret_data``, so a malformed value gives the same clear error everywhere:
it names the key and never shows the value (it is a secret, and a half-decoded one is still one).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping


class SecretDataError(ValueError):
    """A value of a Secret's ``data`` that is not base64-encoded UTF-8; ``key`` names it."""

    def __init__(self, key: str) -> None:
        super().__init__(f"data.{key} is not base64-encoded UTF-8 text")
        self.key = key


def decode_secret_data(
    data: Mapping[str, object], keys: Iterable[str] | None = None, *, text_only: bool = False
) -> dict[str, str]:
    """Each value of ``data`` (or only the ``keys`` present in it) base64-decoded to UTF-8 text.
    ``SecretDataError`` (a ValueError) naming the key when a value is not base64 UTF-8; with
    ``text_only``, such values are left out instead (a Secret read whole, whose other entries,
    a certificate or a keystore, are none of the reader's business)."""
    wanted = data.keys() if keys is None else [k for k in keys if k in data]
    out: dict[str, str] = {}
    for key in wanted:
        value = data[key]
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            if text_only:
                continue
            raise SecretDataError(str(key)) from None
    return out
