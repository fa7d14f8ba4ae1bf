"""The one structlog configuration: console on a terminal, JSON in the cluster.

``configure`` is called exactly once, by the CLI. Library modules only ``structlog.get_logger()``.
Logs go to stderr so ``simulate --output json`` keeps stdout for its single JSON document.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40}


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
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if json_output
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
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


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is *now* (not at configure time), so
    redirected or captured stderr (tests, embedding) never receives writes to a stale file."""

    def __init__(self, *_: object) -> None:
        pass

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg
