"""The one structlog configuration: console on a terminal, JSON in the cluster.

``configure`` is called exactly once, by the CLI. Library modules only ``structlog.get_logger()``.
Logs go to stderr so ``simulate --output json`` keeps stdout for its single JSON document.

Secrets never reach a log line (``analysis._text.redact``): every rendered structlog line is
redacted as it is written, and JSON tracebacks leave out the frames' local variables.
``guard_library_logs`` (called by ``configure``) holds the loggers of the libraries underneath at
WARNING -- httpx logs every request URL at INFO (a chat hook's address, a password in a
Prometheus URL), urllib3 its connections at DEBUG, kubernetes_asyncio whole response bodies
(Secrets included) at DEBUG -- and redacts every stdlib record that still gets through (a record
factory, plus a filter on the root handlers). ``add_secrets`` names strings to mask in every line
from then on (the alert hooks' addresses and tokens, ``record``'s password).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Literal

import structlog
from structlog.tracebacks import ExceptionDictTransformer

# The text helpers only (not the analysis package: logs must stay light to import).
from analysis._text import redact, remember, remembered

LogFormat = Literal["auto", "json", "console"]

#: structlog's ``dict_tracebacks`` without the frames' local variables: those hold tokens, Secret
#: data and request headers, which no pattern could recognise once rendered.
_dict_tracebacks = structlog.processors.ExceptionRenderer(
    ExceptionDictTransformer(show_locals=False)
)


def _console_tracebacks() -> structlog.typing.ExceptionRenderer:
    """structlog's console traceback without local variables: rich's, when installed, shows
    them by default (better-exceptions always does: plain tracebacks then)."""
    if isinstance(structlog.dev.default_exception_formatter, structlog.dev.RichTracebackFormatter):
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40}

#: Loggers of the libraries underneath (and their children): held at WARNING, and redacted.
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "h11",
    "h2",
    "hpack",
    "urllib3",
    "requests",
    "charset_normalizer",
    "prometheus_api_client",
    "aiohttp",
    "kubernetes_asyncio",
)


def configure(fmt: LogFormat = "auto", level: str = "info") -> None:
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"--log-level must be one of {', '.join(_LEVELS)}, got {level!r}")
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: list[structlog.types.Processor] = (
        [_dict_tracebacks, structlog.processors.JSONRenderer()]
        if json_output
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=_console_tracebacks()
            )
        ]
    )
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )
    guard_library_logs()


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Mask these strings (and their encoded forms) in every log line from now on
    (``analysis._text.remember``)."""
    remember(secrets)


def redacted(text: str) -> str:
    """``text`` as it may be logged: ``analysis._text.redact`` with the secrets added so far."""
    return redact(text, remembered())


def guard_library_logs() -> None:
    """Hold the libraries' loggers at WARNING and redact every stdlib log record: at its creation
    (a record factory, so loggers created later -- libraries imported after ``configure`` -- and
    every handler, ours or not, see it redacted) and again in the root handlers. Idempotent."""
    global _base_factory
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))
    factory = logging.getLogRecordFactory()
    if factory is not _redacting_factory:
        _base_factory = factory
        logging.setLogRecordFactory(_redacting_factory)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its traceback text) with secrets masked; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_base_factory: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redact_record(record)
    return record


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the logging module's to report
        return
    clean = redacted(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redacted(record.exc_text)
    if record.stack_info:
        record.stack_info = redacted(record.stack_info)


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is *now* (not at configure time), so
    redirected or captured stderr (tests, embedding) never receives writes to a stale file.
    Every line is redacted on its way out: whatever field or traceback carried a secret."""

    def __init__(self, *_: object) -> None:
        pass

    def msg(self, message: str) -> None:
        sys.stderr.write(redacted(message) + "\n")
        sys.stderr.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg
