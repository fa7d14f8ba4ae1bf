"""``canary-engine loadtester``: Flagger's load tester (flagger-loadtester) HTTP API.

Flagger Canaries call ``http://flagger-loadtester.test/`` from their webhooks; this server answers
them the way flagger-loadtester does (``pkg/loadtester/server.go``), so those webhooks work
unchanged with canary-engine's image. What differs is what runs: ``hey`` is built in
(``engine.cli.hey``: no shell, no hey binary), and any other command is refused unless the operator
starts the server with ``--allow-commands``.

Endpoints (the body is Flagger's webhook payload: ``{name, namespace, phase, checksum,
metadata}``):

* ``POST /`` (any path that is not one below, and any method, as Flagger's catch-all: a ``GET``
  has no payload, a 400): a task from ``metadata.cmd``; ``metadata.type``:

  - ``cmd`` (default): started in the background, answered ``202 Accepted`` at once (Flagger's
    answer). An identical command for the same canary that is still running is skipped (also
    202), as Flagger's task runner does -- a webhook called every interval with ``hey -z 1m``
    does not pile up runs. A hey command line hey itself rejects (``hey -n 1 URL``: -n below
    -c) fails as it does in Flagger's, where hey exits non-zero after the 202: accepted (202, no
    body) and its failure logged (``command_failed``).
  - ``blocking`` (canary-engine's): run to completion; the answer (200, JSON) reports the run.
  - ``bash`` (Flagger's blocking shell task): a hey command runs like ``blocking``; any other
    command needs ``--allow-commands`` and then runs with ``bash -c``; 200 when it exits 0
    (its output in the body if ``metadata.returnCmdOutput`` is true), else 500 with the error.
    A hey command line hey rejects answers 500 too (``blocking`` as well), with Flagger's
    ``command <cmd> failed: <why>: exit status <n>``.
  - Flagger's other types (helm, helmv3, kubectl, concord, ngrinder) are refused with 400.

  Without ``--allow-commands`` a command that does not start with ``hey`` is refused with 400;
  with it, ``cmd`` commands run in the background with ``bash -c``. A hey command hey would run
  but the built-in hey will not (over a bound, a shell construct, ``-D``) is refused with 400.
  Every run stops at ``--max-duration``.
* ``/gate/approve`` 200 ``OK``; ``/gate/halt`` 403 ``Forbidden``.
* ``/gate/check`` 200 ``Approved`` when the gate of ``<name>.<namespace>`` is open, else 403
  ``Forbidden`` (gates start closed); ``/gate/open``, ``/gate/close`` 202 with no body. As in
  Flagger, a payload without name or namespace is not refused: it is about the canary
  ``<name>.<namespace>`` with the missing parts empty (``{}`` checks, opens, closes ``.``).
* ``/rollback/check`` 200 ``Approved`` when the rollback of ``<name>.<namespace>`` is open (the
  rollback webhook then rolls the canary back), else 403; ``/rollback/open``,
  ``/rollback/close`` 202 with no body. Rollbacks start closed.
* ``/healthz`` 200 ``OK`` (any method).
* ``/metrics``: the process' Prometheus metrics (CPU, memory, file descriptors, Python's garbage
  collector), as Flagger's serves Go's, so a scrape configured for flagger-loadtester keeps
  working.

Gate state lives in memory (one replica; a restart closes every gate), as in Flagger.
Malformed requests get a 400 naming the problem, never a traceback. Every run is logged (JSON in
the cluster) with its result; hey runs with requests, rate, status codes and errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)

from engine.cli.hey import (
    HeyError,
    HeyOptions,
    HeyRefused,
    HeyReport,
    is_hey,
    parse_hey,
    run_hey,
)
from engine.shell import logs
from engine.shell.clock import Clock, RealClock

log = structlog.get_logger("canary-engine.cli.loadtester")

#: Largest request body the server reads (a webhook payload is a few hundred bytes).
MAX_PAYLOAD_BYTES = 1024 * 1024
#: Seconds a request's body may take to arrive: a client that sends part of a body and stalls
#: would otherwise hold its connection and buffer for ever (a thousand of them, a gigabyte).
BODY_READ_SECONDS = 10.0
#: Longest command accepted in ``metadata.cmd``.
MAX_COMMAND_CHARS = 16 * 1024
#: Most tasks (hey runs and commands, background and blocking) running at once; more get 429.
MAX_RUNNING_TASKS = 16
#: Most canaries with a gate or rollback state kept in memory.
MAX_GATES = 10_000
#: Bytes of a command's output kept (its tail), for the log and ``returnCmdOutput``.
MAX_OUTPUT_BYTES = 64 * 1024
#: Flagger's bash task runs ``bash -c``; /bin/sh where there is no bash.
_SHELL = shutil.which("bash") or "/bin/sh"
#: What a run answers (a hey report, a command's outcome).
_T = TypeVar("_T")
#: Seconds a command's background children may keep its output open after it exited.
OUTPUT_DRAIN_SECONDS = 2.0
#: Seconds running tasks get to stop on SIGTERM before the server closes.
SHUTDOWN_GRACE_SECONDS = 10.0
#: Flagger's task types this server does not run.
UNSUPPORTED_TYPES = ("helm", "helmv3", "kubectl", "concord", "ngrinder")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTesterOptions:
    port: int = 8080
    bind: str = "0.0.0.0"
    #: Run commands other than hey with bash -c (Flagger's behaviour); off by default.
    allow_commands: bool = False
    #: Seconds any run may last (hey -z is refused above it; commands are killed at it).
    max_duration: float = 3600.0
    #: Flagger's -namespace-regexp: only payloads whose namespace matches (a search, as Go's
    #: MatchString) may run tasks or touch gates; None: every namespace.
    namespace_regexp: re.Pattern[str] | None = None


class _BadRequest(Exception):
    """Answered with ``status`` and the message as plain text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Payload:
    name: str
    namespace: str
    phase: str
    metadata: Mapping[str, str]

    @property
    def canary(self) -> str:
        return f"{self.name}.{self.namespace}"


class LoadTester:
    """The server's state (gates, running tasks) and its request handlers."""

    def __init__(self, options: LoadTesterOptions, *, clock: Clock | None = None) -> None:
        self.options = options
        self._clock = clock or RealClock()
        self._gates: dict[str, bool] = {}
        self._rollbacks: dict[str, bool] = {}
        #: Background tasks by hash(canary + command), for Flagger's skip-if-running.
        self._background: dict[str, asyncio.Future[Any]] = {}
        #: Every run not bound to its request (background runs, and blocking commands, which
        #: outlive a caller that went away): shutdown waits for them.
        self._unattended: set[asyncio.Future[Any]] = set()
        self._running = 0
        self._stop = asyncio.Event()

    # ---------------------------------------------------------------------------------------
    # The application
    # ---------------------------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PAYLOAD_BYTES, middlewares=[_answer_errors])
        app.router.add_route("*", "/healthz", _healthz)  # any method, as Flagger's
        app.router.add_route("*", "/metrics", _metrics)
        app.router.add_route("*", "/gate/approve", _approve)
        app.router.add_route("*", "/gate/halt", _halt)
        for kind, states in (("gate", self._gates), ("rollback", self._rollbacks)):
            app.router.add_route("*", f"/{kind}/check", self._checker(kind, states))
            app.router.add_route("*", f"/{kind}/open", self._setter(kind, states, True))
            app.router.add_route("*", f"/{kind}/close", self._setter(kind, states, False))
        # any method, as Flagger's catch-all handler (a GET's empty body is a 400, not a 405)
        app.router.add_route("*", "/{path:.*}", self._task)
        return app

    @property
    def running(self) -> int:
        """Tasks running now (background and blocking)."""
        return self._running

    async def shutdown(self) -> None:
        """Stop every run (hey runs end with what they measured, commands are killed) and wait
        for the background ones, at most ``SHUTDOWN_GRACE_SECONDS``."""
        self._stop.set()
        tasks = list(self._unattended)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ---------------------------------------------------------------------------------------
    # Gates
    # ---------------------------------------------------------------------------------------

    def _checker(self, kind: str, states: dict[str, bool]) -> Handler:
        async def check(request: web.Request) -> web.Response:
            payload = self._authorized(await _payload(request))
            approved = states.get(payload.canary, False)
            log.info(f"{kind}_check", canary=payload.canary, approved=approved)
            if approved:
                return web.Response(text="Approved")
            return web.Response(status=403, text="Forbidden")

        return check

    def _setter(self, kind: str, states: dict[str, bool], value: bool) -> Handler:
        async def change(request: web.Request) -> web.Response:
            payload = self._authorized(await _payload(request))
            if payload.canary not in states and len(states) >= MAX_GATES:
                raise _BadRequest(f"too many {kind}s kept (at most {MAX_GATES})", status=503)
            states[payload.canary] = value
            word = "opened" if value else "closed"
            log.info(f"{kind}_{word}", canary=payload.canary)
            return web.Response(status=202)  # no body, as Flagger's

        return change

    # ---------------------------------------------------------------------------------------
    # Tasks
    # ---------------------------------------------------------------------------------------

    def _authorized(self, payload: _Payload) -> _Payload:
        """The payload, if its namespace may use this tester (Flagger's Authorizer)."""
        pattern = self.options.namespace_regexp
        if pattern is not None and not pattern.search(payload.namespace):
            log.warning(
                "request_refused",
                namespace=payload.namespace,
                reason="not allowed by --namespace-regexp",
            )
            # Flagger's body, which Flagger copies into the Canary's warning event (the reason
            # is in the load tester's log)
            raise _BadRequest("Forbidden", status=403)
        return payload

    async def _task(self, request: web.Request) -> web.Response:
        payload = self._authorized(await _payload(request))
        if not payload.metadata:
            raise _BadRequest("metadata not found in payload")
        kind = payload.metadata.get("type", "cmd")
        if kind in UNSUPPORTED_TYPES:
            raise _BadRequest(
                f"task type {kind} is not supported by canary-engine loadtester "
                "(supported: cmd, bash, blocking)"
            )
        if kind not in ("cmd", "bash", "blocking"):
            raise _BadRequest(f"unknown task type {kind}")
        command = payload.metadata.get("cmd", "").strip()
        if not command:
            raise _BadRequest("cmd not found in metadata")
        if len(command) > MAX_COMMAND_CHARS:
            raise _BadRequest(f"metadata.cmd is longer than {MAX_COMMAND_CHARS} characters")
        if self._stop.is_set():
            raise _BadRequest("the load tester is shutting down", status=503)
        hey = None
        if is_hey(command):
            try:
                hey = parse_hey(command, max_duration=self.options.max_duration)
            except HeyRefused as exc:
                raise _BadRequest(str(exc)) from None
            except HeyError as exc:
                return self._failed_hey(payload, command, kind, exc)
        elif not self.options.allow_commands:
            raise _BadRequest(
                "command execution is disabled: only hey commands run (got "
                f"{_first_word(command)!r}); start canary-engine loadtester with "
                "--allow-commands to run other commands with bash -c"
            )
        shown = hey.describe(command) if hey is not None else logs.redacted(command)
        if kind == "cmd":
            return self._start_background(payload, command, shown, hey)
        self._check_capacity(payload, shown)
        if hey is not None:
            return await self._blocking_hey(payload, shown, hey, kind)
        return await self._blocking_command(payload, command, shown)

    def _failed_hey(
        self, payload: _Payload, command: str, kind: str, exc: HeyError
    ) -> web.Response:
        """A hey command line hey itself rejects: in Flagger's load tester hey prints its usage
        and exits non-zero, so the command fails as any failing command does there -- a ``cmd``
        task is accepted (202, no body) and its failure only logged; a blocking one answers 500
        with Flagger's ``command <cmd> failed: <output>: exit status <n>``."""
        shown = logs.redacted(command)
        log.info("task_started", canary=payload.canary, cmd=shown, type=kind)
        error = _command_failed(payload, shown, f"{exc}: exit status {exc.exit_status}")
        if kind == "cmd":
            return web.Response(status=202)
        return web.Response(status=500, text=error)

    def _check_capacity(self, payload: _Payload, shown: str) -> None:
        if self._running >= MAX_RUNNING_TASKS:
            log.warning("task_refused", canary=payload.canary, cmd=shown, reason="too many tasks")
            raise _BadRequest(
                f"too many tasks running ({self._running}, at most {MAX_RUNNING_TASKS}); "
                "try again later",
                status=429,
            )

    def _start_background(
        self, payload: _Payload, command: str, shown: str, hey: HeyOptions | None
    ) -> web.Response:
        key = hashlib.sha256(f"{payload.canary}\0{command}".encode()).hexdigest()
        if key in self._background:
            log.info("task_skipped", canary=payload.canary, cmd=shown, reason="already running")
            return web.Response(
                status=202,
                text=f"skipped: the same command is already running for {payload.canary}",
            )
        self._check_capacity(payload, shown)

        work: Awaitable[Any] = (
            self._hey_run(payload, shown, hey)
            if hey is not None
            else self._command_run(payload, command, shown)
        )
        task = self._unattended_run(work, payload, shown)
        self._background[key] = task
        task.add_done_callback(lambda _: self._background.pop(key, None))
        log.info("task_started", canary=payload.canary, cmd=shown, type="cmd")
        return web.Response(status=202, text=f"accepted: running in the background: {shown}")

    def _unattended_run(
        self, work: Awaitable[_T], payload: _Payload, shown: str
    ) -> asyncio.Future[_T]:
        """``work`` as a task of its own: counted as running (``MAX_RUNNING_TASKS``) until it
        ends, waited for by shutdown, and its crash logged (nobody may await it any more)."""
        self._running += 1
        task = asyncio.ensure_future(work)
        self._unattended.add(task)

        def ended(done: asyncio.Future[_T]) -> None:
            self._running -= 1
            self._unattended.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error(
                    "task_crashed", canary=payload.canary, cmd=shown, exc_info=done.exception()
                )

        task.add_done_callback(ended)
        return task

    async def _blocking_hey(
        self, payload: _Payload, shown: str, hey: HeyOptions, kind: str
    ) -> web.Response:
        log.info("task_started", canary=payload.canary, cmd=shown, type=kind)
        self._running += 1
        try:
            report = await self._hey_run(payload, shown, hey)
        finally:
            self._running -= 1
        if report.stopped == "shutdown":
            status = 503
        elif (report.requests or report.cancelled) and not report.answered:
            # Nothing answered at all (refused, unresolvable, timed out): an acceptance test
            # against a canary that is not there fails, as `curl` would, where hey exits 0.
            status = 502
        else:
            status = 200
        return web.json_response(report.to_json(), status=status)

    async def _hey_run(self, payload: _Payload, shown: str, hey: HeyOptions) -> HeyReport:
        try:
            report = await run_hey(
                hey, max_duration=self.options.max_duration, clock=self._clock, stop=self._stop
            )
        except asyncio.CancelledError:
            log.warning("hey_cancelled", canary=payload.canary, cmd=shown)
            raise
        log.info(
            "hey_finished",
            canary=payload.canary,
            phase=payload.phase,
            cmd=shown,
            **report.to_json(),
        )
        return report

    async def _blocking_command(self, payload: _Payload, command: str, shown: str) -> web.Response:
        """Run a ``bash`` task and answer with its outcome. The command runs to its end (or
        ``--max-duration``, or shutdown) even when the caller goes away first, as Flagger's load
        tester runs it under its own timeout, not the request's: a migration or ``helm test``
        slower than the webhook's ``timeout`` is not killed half-way."""
        log.info("task_started", canary=payload.canary, cmd=shown, type="bash")
        run = self._unattended_run(self._command_run(payload, command, shown), payload, shown)
        try:
            ok, output = await asyncio.shield(run)
        except asyncio.CancelledError:
            if not run.done():
                log.info(
                    "command_continues",
                    canary=payload.canary,
                    cmd=shown,
                    reason="the caller went away; it runs to its end, as in Flagger",
                )
            raise
        if not ok:
            return web.Response(status=500, text=output)
        if _true(payload.metadata.get("returnCmdOutput")):
            return web.Response(text=output)
        return web.Response()  # Flagger's bash task answers 200 with no body

    async def _command_run(self, payload: _Payload, command: str, shown: str) -> tuple[bool, str]:
        """Run ``bash -c command`` (only with --allow-commands); (succeeded, output or
        error). Killed, with its process group, at --max-duration and on shutdown."""
        proc = await asyncio.create_subprocess_exec(
            _SHELL,
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        reader = asyncio.ensure_future(_read_tail(proc.stdout, MAX_OUTPUT_BYTES))
        exited = asyncio.ensure_future(self._exit_status(proc))
        stopping = asyncio.ensure_future(self._stop.wait())
        reason = ""
        try:
            done, _ = await asyncio.wait(
                {exited, stopping},
                timeout=self.options.max_duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if stopping in done:
                reason = "stopped: the load tester is shutting down"
            elif exited not in done:
                reason = "killed after --max-duration"
        finally:
            stopping.cancel()
            if proc.returncode is None:
                _kill_group(proc.pid)
            await exited
            output = await _drain(reader, proc.pid)
            if reader.done() and not reader.cancelled():
                await proc.wait()  # the pipes are closed: this only reaps the transport
        code = proc.returncode
        if code == 0 and not reason:
            # redacted whole, then cut: a cut first can split "Bearer <token>" from its token
            logged = _true(payload.metadata.get("logCmdOutput")) and {
                "output": logs.redacted(output)[-2000:]
            }
            log.info("command_finished", canary=payload.canary, cmd=shown, **(logged or {}))
            return True, output
        return False, _command_failed(payload, shown, f"{output}: {reason or _exit_text(code)}")

    async def _exit_status(self, proc: asyncio.subprocess.Process) -> int:
        """The shell's exit status, as soon as it exits (``proc.wait()`` would also wait for
        every child still holding its output open)."""
        while proc.returncode is None:
            await self._clock.sleep(0.05)
        return proc.returncode


async def _drain(reader: asyncio.Future[str], pid: int) -> str:
    """The output, once the shell has exited; a child it left in the background that still
    holds the output open is killed (its process group) after ``OUTPUT_DRAIN_SECONDS``."""
    done, _ = await asyncio.wait({reader}, timeout=OUTPUT_DRAIN_SECONDS)
    if not done:
        _kill_group(pid)
        done, _ = await asyncio.wait({reader}, timeout=1.0)
    if not done:  # a child that left the process group: give up on the rest of its output
        reader.cancel()
        return "(output lost: a background child kept it open)"
    return reader.result()


def _exit_text(code: int | None) -> str:
    """How Go's exec.ExitError reads: ``exit status 1``, or ``signal: killed`` for a command a
    signal ended (Python reports it as the negative signal number)."""
    if code is not None and code < 0:
        try:
            name = signal.strsignal(-code)
        except ValueError:
            name = None
        return f"signal: {(name or f'signal {-code}').lower()}"
    return f"exit status {code}"


def _command_failed(payload: _Payload, shown: str, detail: str) -> str:
    """Flagger's wording, ``command <cmd> failed: <output>: exit status <n>``, logged as
    ``command_failed``; redacted whole (each part was, but joined they may show more)."""
    error = logs.redacted(f"command {shown} failed: {detail}")
    log.error("command_failed", canary=payload.canary, cmd=shown, error=error[-2000:])
    return error


#: Bytes read before the kept tail of an output, so that a credential's prefix the tail cuts
#: ("Authorization: Bearer ...") is still there when the tail is redacted.
_TAIL_CONTEXT = 4096


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> str:
    """The last ``limit`` characters of the output, redacted before they are cut from the rest
    (a cut first can leave a token without the words that mark it as one)."""
    kept = b""
    while chunk := await stream.read(64 * 1024):
        kept = (kept + chunk)[-(limit + _TAIL_CONTEXT) :]
    text = logs.redacted(kept.decode(errors="replace"))
    return text[-limit:]


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _true(flag: str | None) -> bool:
    """Go's strconv.ParseBool truth, as Flagger reads returnCmdOutput and logCmdOutput."""
    return flag in ("1", "t", "T", "TRUE", "true", "True")


def _first_word(command: str) -> str:
    return command.split(maxsplit=1)[0][:80]


async def _payload(request: web.Request) -> _Payload:
    """Flagger's webhook payload from the body; 400 naming what is wrong. Missing fields are
    empty, as Go's json.Unmarshal leaves them (a gate call without a name or namespace is about
    the canary ``.``, as in Flagger); so is every field of a JSON ``null``."""
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            raw = await request.read()
    except TimeoutError:
        raise _BadRequest(
            f"the request body did not arrive within {BODY_READ_SECONDS:g}s", status=408
        ) from None
    if not raw.strip():
        raise _BadRequest("empty body: expected Flagger's webhook payload (JSON)")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _BadRequest(f"malformed JSON in the request body: {exc}") from None
    if body is None:
        body = {}  # Go's json.Unmarshal of null into the payload: no error, nothing set
    if not isinstance(body, dict):
        raise _BadRequest(f"the payload must be a JSON object, got {_json_type(body)}")
    fields: dict[str, str] = {}
    for key in ("name", "namespace", "phase", "checksum"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise _BadRequest(f"payload field {key} must be a string, got {_json_type(value)}")
        fields[key] = value or ""
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _BadRequest(f"payload field metadata must be an object, got {_json_type(metadata)}")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise _BadRequest(
                f"metadata.{key[:80]} must be a string, got {_json_type(value)} (Flagger's "
                "metadata is a map of strings: quote the value)"
            )
    return _Payload(fields["name"], fields["namespace"], fields["phase"], metadata)


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@web.middleware
async def _answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _BadRequest as exc:
        log.warning(
            "request_refused", path=request.path, status=exc.status, reason=logs.redacted(str(exc))
        )
        response = web.Response(status=exc.status, text=logs.redacted(str(exc)))
        if exc.status == 408:
            response.force_close()  # not kept alive: the rest of that body is never read
        return response
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("request_failed", path=request.path)
        return web.Response(status=500, text=f"internal error ({type(exc).__name__})")


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="OK")


#: The process collectors only (not the default registry, which would also carry whatever else the
#: process imported registers), like Go's promhttp.Handler() in Flagger's load tester.
_REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    _REGISTRY.register(_collector)


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(_REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _approve(_: web.Request) -> web.Response:
    return web.Response(text="OK")  # as Flagger's /gate/approve (its /gate/check says Approved)


async def _halt(_: web.Request) -> web.Response:
    return web.Response(status=403, text="Forbidden")


# -------------------------------------------------------------------------------------------
# Serving
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningServer:
    tester: LoadTester
    #: The bound port (the real one when the options asked for port 0).
    port: int


@asynccontextmanager
async def serve_loadtester(
    options: LoadTesterOptions, *, clock: Clock | None = None
) -> AsyncIterator[RunningServer]:
    """Serve until the block exits; then stop every run and close the server."""
    tester = LoadTester(options, clock=clock)
    # handler_cancellation: a blocking hey run stops when its caller (Flagger, after its webhook
    # timeout) goes away, instead of loading the target for nobody (a bash command runs on).
    # lingering_time: after refusing a body that never finished arriving, wait this long for its
    # rest (aiohttp's default is 10 s) before closing the connection.
    runner = web.AppRunner(
        tester.application(), access_log=None, handler_cancellation=True, lingering_time=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, options.bind, options.port)
        await site.start()
        port = int(runner.addresses[0][1]) if options.port == 0 else options.port
        yield RunningServer(tester, port)
    finally:
        await tester.shutdown()
        await runner.cleanup()


async def run_loadtester(options: LoadTesterOptions, *, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``); exit status 0."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    async with serve_loadtester(options) as server:
        log.info(
            "loadtester_started",
            address=options.bind,
            port=server.port,
            allow_commands=options.allow_commands,
            max_duration=options.max_duration,
        )
        await stop.wait()
        log.info("loadtester_stopping", running=server.tester.running)
    log.info("loadtester_stopped")
    return 0
