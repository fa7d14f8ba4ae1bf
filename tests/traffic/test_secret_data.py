"""decode_secret_data: the one decoding of a Secret's data (controller, alerts, record)."""

from __future__ import annotations

import base64

import pytest

from traffic import SecretDataError, decode_secret_data


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_values_are_decoded_and_keys_can_be_picked() -> None:
    data = {"username": b64(b"admin"), "password": b64("pässwörd".encode()), "other": "!!"}
    assert decode_secret_data(data, ("username", "password", "absent")) == {
        "username": "admin",
        "password": "pässwörd",
    }
    assert decode_secret_data({}) == {}


@pytest.mark.parametrize(
    "value", ["not base64!", b64(b"x")[:-1], b64(b"\xff\xfe secret-ish bytes")]
)
def test_a_bad_value_names_its_key_and_never_shows_the_value(value: str) -> None:
    with pytest.raises(SecretDataError) as caught:
        decode_secret_data({"token": b64(b"fine"), "address": value})
    assert str(caught.value) == "data.address is not base64-encoded UTF-8 text"
    assert caught.value.key == "address"
