"""Real servers the end-to-end tests start (Prometheus, graphite-web): a free port on 127.0.0.1,
and a process that is waited for until it answers and always stopped afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running(
    argv: list[str],
    *,
    log: Path,
    ready: Callable[[], bool],
    not_ready: str,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (output to ``log``) until ``ready()`` is true, then yield it; stopped on exit.

    The test fails with the server's log when it exits first, and with ``not_ready`` when it is
    not ready within ``timeout`` seconds; a ``ready`` that raises ``httpx.HTTPError`` (nothing
    listening yet) counts as not ready. ``name`` names the server in the failure (default: the
    program's)."""
    name = name or Path(argv[0]).name
    with log.open("w") as output:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{name} exited with {process.returncode}: {log.read_text()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if ready():
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(not_ready)
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
