"""End-to-end tests: processes started the way users start them."""

from __future__ import annotations

import signal


def pytest_configure() -> None:
    # A shell starts a background job (`cmd &`, nohup, some CI runners) with SIGINT ignored, and
    # an ignored signal stays ignored in every child: the commands these tests stop with Ctrl-C
    # (`get --watch`, the controller) would then never see it. Restore the default, as a
    # terminal would have it, so children start with SIGINT delivered.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
