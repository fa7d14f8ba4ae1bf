"""A built-in ``hey`` (github.com/rakyll/hey): the load generator Flagger's load tester runs.

``parse_hey(command, max_duration=...)`` reads a ``hey ...`` command line the way hey's Go flag
parser does (``-z 1m``, ``-z=1m``, ``--z 1m``; booleans as ``-h2`` or ``-h2=true``) -- split with
``shlex``, never through a shell -- and raises a ``HeyError`` naming the problem for a command
line hey itself rejects (hey prints its usage and exits non-zero: ``HeyError.exit_status``), and
a ``HeyRefused`` (a ``HeyError``) for one hey would run but the built-in hey will not: beyond the
bounds below, or needing what it does not have (a shell, a file of the load tester's).
``run_hey(options, ...)`` generates the load with aiohttp and returns a ``HeyReport``: requests,
rate achieved, status codes, errors by status and by exception class, latency.

Semantics kept from hey: ``-q`` is the rate **per worker** (``-q 10 -c 2`` is 20 requests/s);
``-z`` wins over ``-n``; ``-n`` is split evenly between the ``-c`` workers (``n // c`` each);
default ``-n 200 -c 50 -t 20 -m GET -T text/html``; TLS certificates are not verified; no
cookies are kept; no proxy unless ``-x``; redirects are followed unless ``-disable-redirects``;
``-H`` sets a header (the last one of a name wins, and wins over ``-T`` and ``-A``); ``-host``
sets the Host header. Not supported: ``-D`` (body from a file of the load tester's) -- use
``-d``; ``-h2`` (aiohttp speaks HTTP/1.1: the run goes on over HTTP/1.1 and says so in its
notes); ``-o csv`` and ``-cpus`` are accepted and ignored (noted).

Bounds (a load tester is a shared service; one webhook must not take it over): at most
``MAX_CONCURRENCY`` workers, ``MAX_REQUESTS`` for ``-n``, ``MAX_BODY_BYTES`` of body,
``MAX_HEADERS`` headers; ``-z`` at most the load tester's ``--max-duration``; a run without
``-z`` stops at ``--max-duration`` too; requests still in flight when the run ends get at most
``MAX_DRAIN_SECONDS`` more.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import re
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from analysis._text import header_secrets, redact, url_secrets
from config import format_go_duration, parse_duration
from engine.shell.clock import Clock, RealClock

#: Most workers (``-c``) one run may start.
MAX_CONCURRENCY = 256
#: Most requests (``-n``) one run may ask for.
MAX_REQUESTS = 10_000_000
#: Largest request body (``-d``).
MAX_BODY_BYTES = 1024 * 1024
#: Most ``-H`` headers.
MAX_HEADERS = 64
#: Highest per-worker rate (``-q``); 0 (hey's default) means as fast as the target answers.
MAX_QPS = 100_000.0
#: Seconds requests still in flight at the end of a run may take before they are cancelled.
MAX_DRAIN_SECONDS = 30.0
#: Latency samples kept for the percentiles (reservoir sampling beyond that).
LATENCY_SAMPLES = 10_000
#: What hey sends as User-Agent (appended to a -H User-Agent, as hey does).
USER_AGENT = "hey/0.0.1 (canary-engine)"

_HEADER = re.compile(r"^([\w-]+):\s*(.+)$")
_AUTH = re.compile(r"^(.+?):(\S.*)$")
_VALUE_FLAGS = (
    *("n", "c", "q", "z", "t", "m", "H", "A", "d", "D", "T", "a", "x"),
    *("host", "o", "cpus"),
)
_BOOL_FLAGS = ("h2", "disable-compression", "disable-keepalive", "disable-redirects")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
EXAMPLE = "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"


class HeyError(ValueError):
    """A hey command line hey rejects; the message names the option and what was wrong.

    ``exit_status`` is what the command exits with in Flagger's load tester: 2 for what Go's
    flag parser (or ``sh``, for unbalanced quotes) refuses, 1 for hey's own usage errors."""

    def __init__(self, message: str, *, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class HeyRefused(HeyError):
    """A hey command hey would run but the built-in hey refuses: over a bound of the load tester,
    or needing a shell or a file of the load tester's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeyOptions:
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    #: ``-z`` in seconds; ``None`` runs ``requests`` requests instead.
    duration: float | None = None
    requests: int = 200
    concurrency: int = 50
    #: Per-worker rate limit (``-q``); 0 = none.
    qps: float = 0.0
    #: Per-request timeout (``-t``) in seconds; 0 = none (the run's bounds still apply).
    timeout: float = 20.0
    proxy: str | None = None
    disable_keepalive: bool = False
    disable_compression: bool = False
    disable_redirects: bool = False
    notes: tuple[str, ...] = ()
    #: Strings to mask wherever the command is shown (passwords, credential headers).
    secrets: tuple[str, ...] = ()

    def describe(self, command: str) -> str:
        """``command`` as it may be logged or answered: credentials masked."""
        return redact(command, self.secrets)


def is_hey(command: str) -> bool:
    """Whether the command's first word is ``hey`` (or a path to it)."""
    words = command.split(maxsplit=1)
    return bool(words) and words[0].rsplit("/", 1)[-1] == "hey"


def parse_hey(command: str, *, max_duration: float) -> HeyOptions:
    """Parse a hey command line; raise ``HeyError`` with a readable reason."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise HeyError(f"cannot split the hey command: {exc}", exit_status=2) from None
    if not words or words[0].rsplit("/", 1)[-1] != "hey":
        raise HeyError(f"not a hey command; expected e.g. {EXAMPLE!r}")
    values: dict[str, str] = {}
    numbers: dict[str, float] = {}  # the typed options (_FLAG_TYPES), read once
    headers: list[str] = []
    flags: dict[str, bool] = {}
    positional: list[str] = []
    args = iter(words[1:])
    for word in args:
        if word == "--":
            positional.extend(args)
            break
        if not word.startswith("-") or word == "-":
            # Go's flag parsing stops at the first argument that is not a flag: hey reads the
            # URL there, and what follows is not parsed as options
            positional.append(word)
            positional.extend(args)
            break
        name, eq, inline = word.lstrip("-").partition("=")
        if name in _BOOL_FLAGS:
            if eq and inline not in _TRUE + _FALSE:
                raise HeyError(
                    f"hey option -{name}: expected true or false, got {inline!r}", exit_status=2
                )
            flags[name] = not eq or inline in _TRUE
            continue
        if name not in _VALUE_FLAGS:
            raise HeyError(
                f"unknown hey option {word.partition('=')[0]!r}; {_supported()}", exit_status=2
            )
        if not eq:
            following = next(args, None)
            if following is None:
                raise HeyError(f"hey option -{name} needs a value", exit_status=2)
            inline = following
        if name == "H":
            headers.append(inline)
        elif name in _FLAG_TYPES:
            # Go's flag parser reads each value as its type as it goes (exit status 2)
            numbers[name] = _typed(name, inline)
            values[name] = inline
        else:
            values[name] = inline
    if not positional:
        raise HeyError(f"hey needs the URL to load, e.g. {EXAMPLE!r}")
    extra = positional[1:]
    if any(_SHELL_OPERATOR.match(word) for word in extra):
        raise HeyRefused(
            f"hey takes one URL, got {extra!r} after it (the built-in hey runs no shell: pipes, "
            "redirections, && and ; are not supported)"
        )
    # Anything else after the URL hey ignores (it reads flag.Args()[0] only), and so do we.
    return _options(positional[0], values, numbers, headers, flags, max_duration)


#: A word a shell would read as an operator: a pipe, a list, a redirection, backgrounding.
_SHELL_OPERATOR = re.compile(r"^(\|\|?|&&?|;;?|[0-9]*[<>]|[0-9]*>>|[0-9]*>&)")


def _typed(name: str, text: str) -> float:
    """``text`` read as option ``name``'s Go type (``_FLAG_TYPES``; a duration in seconds);
    HeyError (exit status 2) when it is not one."""
    kind = _FLAG_TYPES[name]
    try:
        if kind == "int":
            return int(text.replace("_", ""), 0)  # Go's base-0 ParseInt
        if kind == "float":
            return float(text)
        return parse_duration(text)
    except ValueError:
        expected = {"int": "a whole number", "float": "a number", "duration": "a duration"}[kind]
        raise HeyError(
            f"hey option -{name}: expected {expected}, got {text!r}", exit_status=2
        ) from None


#: The longest per-request timeout (``-t``, seconds) the load tester takes.
MAX_TIMEOUT_SECONDS = 24 * 3600

#: The Go type of each hey option that has one (the others are strings).
_FLAG_TYPES = {"n": "int", "c": "int", "t": "int", "q": "float", "z": "duration"}


def _supported() -> str:
    names = sorted((*_VALUE_FLAGS, *_BOOL_FLAGS), key=str.lower)
    return "supported: " + " ".join(f"-{n}" for n in names if n != "D")


def _bounded(name: str, value: float, low: int, high: int) -> int:
    """A whole-number option within [low, high]: below is hey's own usage error, above the
    load tester's bound."""
    if not low <= value <= high:
        error = HeyError if value < low else HeyRefused
        raise error(f"hey option -{name}: must be between {low} and {high}, got {value}")
    return int(value)


def _options(
    url: str,
    values: dict[str, str],
    numbers: dict[str, float],
    raw_headers: list[str],
    flags: dict[str, bool],
    max_duration: float,
) -> HeyOptions:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HeyError(f"hey needs an http:// or https:// URL with a host, got {url!r}")
    notes: list[str] = []
    secrets: list[str] = [*url_secrets(url)]
    duration: float | None = numbers.get("z")
    if duration is not None and duration <= 0:
        duration = None  # hey: no duration, so -n requests (its `if dur > 0`)
    elif duration is not None and duration > max_duration:
        raise HeyRefused(
            f"hey option -z {values['z']} is longer than the load tester's --max-duration "
            f"({format_go_duration(max_duration)})"
        )
    concurrency = _bounded("c", numbers.get("c", 50), 1, MAX_CONCURRENCY)
    if duration is None:
        requests = _bounded("n", numbers.get("n", 200), 1, MAX_REQUESTS)
        if requests < concurrency:
            raise HeyError(f"hey option -n ({requests}) cannot be less than -c ({concurrency})")
    else:  # hey ignores -n with a duration (it runs until -z is over), whatever its value
        requests = max(1, int(numbers.get("n", 200)))
    qps = numbers.get("q", 0.0)
    if qps > MAX_QPS:
        raise HeyRefused(f"hey option -q: must be at most {MAX_QPS:g}, got {values['q']!r}")
    if not qps > 0:  # hey throttles only when -q > 0: zero, negative or NaN is no limit
        qps = 0.0
    # hey's -t 0 is no timeout, and so is a negative one (Go's http.Client)
    timeout = numbers.get("t", 20)
    if timeout > MAX_TIMEOUT_SECONDS:
        raise HeyRefused(
            f"hey option -t: must be at most {MAX_TIMEOUT_SECONDS}, got {values['t']!r}"
        )
    timeout = float(max(0, timeout))
    method = values.get("m", "GET").upper()
    if not re.fullmatch(r"[A-Z]+", method):
        raise HeyError(
            f"hey option -m: expected an HTTP method such as GET or POST, got {method!r}"
        )
    if "D" in values:
        raise HeyRefused("hey option -D (body from a file) is not supported; pass the body with -d")
    body = values["d"].encode() if "d" in values else None
    if body is not None and len(body) > MAX_BODY_BYTES:
        raise HeyRefused(f"hey option -d: the body is longer than {MAX_BODY_BYTES} bytes")
    if len(raw_headers) > MAX_HEADERS:
        raise HeyRefused(f"hey option -H: at most {MAX_HEADERS} headers, got {len(raw_headers)}")
    # hey's order: Content-Type (-T), then Accept (-A), then every -H (the last one of a name
    # wins, whatever its case). Keyed by the lower-case name.
    headers: dict[str, tuple[str, str]] = {}

    def put(name: str, value: str) -> None:
        headers[name.lower()] = (name, value)

    put("Content-Type", values.get("T", "text/html"))
    if values.get("A"):
        put("Accept", values["A"])
    for raw in raw_headers:
        match = _HEADER.match(raw)
        if match is None:
            raise HeyError(f"hey option -H: expected 'Name: value', got {raw!r}")
        put(match[1], match[2])
    if "a" in values:
        match = _AUTH.match(values["a"])
        if match is None:
            raise HeyError("hey option -a: expected user:password")
        secrets.append(match[2])
        token = base64.b64encode(f"{match[1]}:{match[2]}".encode()).decode()
        put("Authorization", f"Basic {token}")
    if values.get("host"):
        put("Host", values["host"])
    agent = headers.get("user-agent")
    put(agent[0] if agent else "User-Agent", f"{agent[1]} {USER_AGENT}" if agent else USER_AGENT)
    secrets += header_secrets(headers.values())
    proxy = values.get("x")
    if proxy is not None:
        if "://" not in proxy:
            proxy = f"http://{proxy}"
        proxy_parts = urlsplit(proxy)
        if proxy_parts.scheme != "http" or not proxy_parts.hostname:
            raise HeyError(f"hey option -x: expected an http proxy host:port, got {values['x']!r}")
        secrets += url_secrets(proxy)
    if flags.get("h2"):
        notes.append("-h2: HTTP/2 is not supported by the built-in hey; HTTP/1.1 was used")
    if "o" in values:
        if values["o"] != "csv":
            raise HeyError(f"hey option -o: only csv is known, got {values['o']!r}")
        notes.append("-o csv: ignored; the summary is in the answer and the logs")
    if "cpus" in values:
        notes.append("-cpus: ignored")
    return HeyOptions(
        url=url,
        method=method,
        headers=tuple(headers.values()),
        body=body,
        duration=duration,
        requests=requests,
        concurrency=concurrency,
        qps=qps,
        timeout=timeout,
        proxy=proxy,
        disable_keepalive=flags.get("disable-keepalive", False),
        disable_compression=flags.get("disable-compression", False),
        disable_redirects=flags.get("disable-redirects", False),
        notes=tuple(notes),
        secrets=tuple(s for s in secrets if s),
    )


# -------------------------------------------------------------------------------------------
# The run
# -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Stats:
    statuses: Counter[int] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    total_latency: float = 0.0
    fastest: float = math.inf
    slowest: float = 0.0
    samples: list[float] = field(default_factory=list)
    seen: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def latency(self, seconds: float) -> None:
        self.total_latency += seconds
        self.fastest = min(self.fastest, seconds)
        self.slowest = max(self.slowest, seconds)
        self.seen += 1
        if len(self.samples) < LATENCY_SAMPLES:
            self.samples.append(seconds)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < LATENCY_SAMPLES:
                self.samples[slot] = seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class HeyReport:
    url: str
    method: str
    concurrency: int
    qps_per_worker: float
    #: Completed requests: answered (any status) or failed with an exception.
    requests: int
    #: Seconds from the start of the run to its end.
    duration: float
    status_codes: dict[str, int]
    errors_by_status: dict[str, int]
    errors_by_exception: dict[str, int]
    #: One message per exception class (credentials masked), to see what went wrong.
    error_examples: dict[str, str]
    latency: dict[str, float]
    #: Why the run ended: duration (-z), requests (-n), max-duration, shutdown.
    stopped: str
    #: Requests cut short when the run was stopped or its in-flight time ran out.
    cancelled: int
    notes: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer (any status)."""
        return sum(self.status_codes.values())

    @property
    def errors(self) -> int:
        return sum(self.errors_by_status.values()) + sum(self.errors_by_exception.values())

    def summary(self) -> str:
        limit = f"-q {self.qps_per_worker:g} per worker, " if self.qps_per_worker else ""
        errors = ", ".join(
            [f"{n}x status {code}" for code, n in self.errors_by_status.items()]
            + [f"{n}x {name}" for name, n in self.errors_by_exception.items()]
        )
        return (
            f"hey {self.method} {self.url}: {self.requests} requests in {self.duration:.1f}s "
            f"({self.rate:.1f} req/s; {limit}-c {self.concurrency}), "
            f"{self.errors} errors{f' ({errors})' if errors else ''}; stopped by {self.stopped}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "url": self.url,
            "method": self.method,
            "requests": self.requests,
            "duration_seconds": round(self.duration, 3),
            "rate_per_second": round(self.rate, 2),
            "concurrency": self.concurrency,
            "qps_per_worker": self.qps_per_worker,
            "status_codes": self.status_codes,
            "errors": {
                "total": self.errors,
                "by_status": self.errors_by_status,
                "by_exception": self.errors_by_exception,
                "examples": self.error_examples,
            },
            "latency_seconds": self.latency,
            "stopped": self.stopped,
            "cancelled": self.cancelled,
            "notes": list(self.notes),
        }


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


async def run_hey(
    options: HeyOptions,
    *,
    max_duration: float,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
) -> HeyReport:
    """Generate the load ``options`` describe; return when the run is over (``-z`` elapsed,
    ``-n`` done, ``max_duration`` reached, or ``stop`` set). Cancelling the caller cancels the
    run. Never raises for what the target does: failures are counted in the report."""
    clock = clock or RealClock()
    stats = _Stats()
    limit = min(options.duration or max_duration, max_duration)
    quota = None if options.duration else options.requests // options.concurrency
    interval = 1.0 / options.qps if options.qps > 0 else 0.0
    connector = aiohttp.TCPConnector(
        limit=options.concurrency, force_close=options.disable_keepalive, ssl=False
    )
    timeout = aiohttp.ClientTimeout(total=options.timeout or None)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        skip_auto_headers=("Accept-Encoding",) if options.disable_compression else (),
    )
    headers = dict(options.headers)
    started = clock.now()
    deadline = started + limit
    inflight = 0

    async def one_request() -> None:
        nonlocal inflight
        begin = clock.now()
        inflight += 1
        try:
            async with session.request(
                options.method,
                options.url,
                headers=headers,
                data=options.body,
                allow_redirects=not options.disable_redirects,
                proxy=options.proxy,
            ) as response:
                async for _ in response.content.iter_chunked(64 * 1024):
                    pass
                stats.statuses[response.status] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            stats.exceptions[name] += 1
            if name not in stats.examples:
                stats.examples[name] = redact(str(exc) or name, options.secrets)[:300]
        finally:
            inflight -= 1
        stats.latency(clock.now() - begin)

    async def worker() -> None:
        origin = clock.now()
        slot = 0
        sent = 0
        while quota is None or sent < quota:
            now = clock.now()
            if now >= deadline:
                return
            if interval:
                # Like hey's ticker: missed ticks are dropped, not made up in a burst.
                slot = max(slot, math.floor((now - origin) / interval))
                at = origin + slot * interval
                if at >= deadline:
                    return
                if at > now:
                    await clock.sleep(at - now)
                slot += 1
            sent += 1
            await one_request()

    stopped = "requests" if quota is not None else "duration"
    workers = [asyncio.ensure_future(worker()) for _ in range(options.concurrency)]
    everything = asyncio.gather(*workers)
    waiters: set[asyncio.Future[Any]] = {everything}
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    if stopper is not None:
        waiters.add(stopper)
    cancelled = 0
    try:
        done, _ = await asyncio.wait(
            waiters,
            timeout=limit + min(options.timeout or MAX_DRAIN_SECONDS, MAX_DRAIN_SECONDS),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if everything not in done:
            stopped = "shutdown" if stopper is not None and stopper in done else "max-duration"
            cancelled = inflight
        elif quota is not None and clock.now() >= deadline:
            stopped = "max-duration"
    finally:
        if stopper is not None:
            stopper.cancel()
        everything.cancel()
        await asyncio.gather(everything, return_exceptions=True)
        await session.close()
    failure = everything.exception() if not everything.cancelled() else None
    # (A gather cut off above may end with the CancelledError it was given rather than in the
    # cancelled state: that is this run stopping, reported below, not a failure.)
    if failure is not None and not isinstance(failure, asyncio.CancelledError):
        raise failure  # a bug in a worker: what the target does is counted, never raised
    elapsed = clock.now() - started
    if stopped == "duration" and options.duration:
        # The last worker returns at its last slot before the end of -z, not at the end itself.
        elapsed = max(elapsed, options.duration)
    ordered = sorted(stats.samples)
    latency = (
        {
            "fastest": round(stats.fastest, 4),
            "slowest": round(stats.slowest, 4),
            "average": round(stats.total_latency / stats.seen, 4),
            "p50": round(_percentile(ordered, 0.5), 4),
            "p90": round(_percentile(ordered, 0.9), 4),
            "p99": round(_percentile(ordered, 0.99), 4),
        }
        if ordered
        else {}
    )
    return HeyReport(
        url=redact(options.url, options.secrets),
        method=options.method,
        concurrency=options.concurrency,
        qps_per_worker=options.qps,
        requests=sum(stats.statuses.values()) + sum(stats.exceptions.values()),
        duration=elapsed,
        status_codes={str(code): n for code, n in sorted(stats.statuses.items())},
        errors_by_status={
            str(code): n for code, n in sorted(stats.statuses.items()) if code >= 400
        },
        errors_by_exception=dict(sorted(stats.exceptions.items())),
        error_examples=dict(sorted(stats.examples.items())),
        latency=latency,
        stopped=stopped,
        cancelled=cancelled,
        notes=options.notes,
    )
