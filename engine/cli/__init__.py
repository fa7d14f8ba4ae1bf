"""``canary-engine`` command line: run | simulate | record | validate | loadtester
(interfaces.md §1).

Exit statuses: simulate 0 promoted, 1 rolled back, 3 undecided, 2 bad input; validate 0 valid,
2 invalid; the operator commands (promote | abort | retry | pause | resume, engine.cli.operator)
0 sent, 1 no such Canary, 4 the API refused; every error is one readable message on stderr, never
a traceback. Any command whose output's reader stops early (``| head``) ends quietly with 141.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.cli._options import (
    MESH_PROVIDER_DEFAULT,
    OPERATOR_COMMANDS,
    PRESET_NAMES,
    _comma_list,
    _duration_option,
    _flagger_run_flags,
    _negative_times,
    _split_commas,
    _version,
    build_parser,
)

if TYPE_CHECKING:
    from analysis import Recording
    from engine.cli.simulate import SimulationResult

# config, numpy, httpx and kubernetes-asyncio are imported when a command runs, not here, so that
# ``--help`` and ``validate`` start fast (README "Security and limits").


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_READER_GONE",
    "MESH_PROVIDER_DEFAULT",
    "OPERATOR_COMMANDS",
    "PRESET_NAMES",
    "build_parser",
    "check_output_path",
    "main",
]

EXIT_BAD_INPUT = 2
#: The status of a process that SIGPIPE ended (128 + 13): what ``| head`` leaves a shell tool.
EXIT_READER_GONE = 141


def main(
    argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None
) -> int:
    """``parser``: another front end's (the kubectl plugin's, engine.cli.kubectl_canary)."""
    args = (parser or build_parser()).parse_args(_flagger_run_flags(_negative_times(argv)))
    if args.command not in _QUICK_COMMANDS:
        return _dispatch(args)
    with _without_pydantic_plugins(), _without_cycle_collection():
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from config import CanaryEngineError, SpecError

    handler, with_logs = _HANDLERS.get(args.command, (_operator_command, False))
    try:
        if getattr(args, "mesh_provider", None) is not None:
            # one check for every command that takes it, before any work
            _check_mesh_provider(args.mesh_provider)
        if with_logs:
            _configure_logs(args)
        status = handler(args)
        if sys.stdout is not None:  # (None when the command runs with stdout closed)
            sys.stdout.flush()  # a reader gone shows here, inside the try, rather than at exit
        return status
    except SpecError as exc:
        print(_redacted(exc.render()), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CanaryEngineError as exc:
        print(_redacted(f"canary-engine: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return _reader_gone()


#: Commands run often and briefly (``validate``: by editors and pre-commit hooks on every save),
#: whose start-up has a target (150 ms, ``benchmarks/bench_startup.py``); their work is bounded
#: by the files they read.
_QUICK_COMMANDS = frozenset({"validate"})


def _reader_gone() -> int:
    """The output's reader stopped reading (``simulate ... | head``): end quietly with the status
    of a process that SIGPIPE ended, as shell tools do, not a traceback. Python would raise again
    when it flushes stdout on the way out, so stdout is pointed at /dev/null first."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout to point anywhere
        pass
    return EXIT_READER_GONE


def _sweep(args: argparse.Namespace) -> int:
    from engine.cli.sweep_command import run_sweep_command

    return run_sweep_command(args)


def _record(args: argparse.Namespace) -> int:
    from engine.cli.record import run_record

    return run_record(args)


def _redacted(message: str) -> str:
    """An error as it may be printed: no password, token or chat-hook address
    (engine.shell.logs)."""
    from engine.shell import logs

    return logs.redacted(message)


def _configure_logs(args: argparse.Namespace) -> None:
    from config import Problem, SpecError
    from engine.shell import logs

    try:
        logs.configure(args.log_format, args.log_level)
    except ValueError as exc:
        raise SpecError(Problem("--log-level", str(exc).removeprefix("--log-level "))) from None


def _simulate(args: argparse.Namespace) -> int:
    from config import Problem, SpecError
    from engine.cli.simulate import bundled_example, load_inputs, simulate
    from engine.cli.timeline import render_timeline

    if args.canary is None and args.recording is None:
        canary_path = bundled_example("webhook-server.yaml")
        recording_path = bundled_example("webhook-server-good.csv")
    elif args.canary is None:
        canary_path, recording_path = bundled_example("webhook-server.yaml"), args.recording
    elif args.recording is None:
        raise SpecError(Problem("--recording", "required with --canary: the metrics to replay"))
    else:
        canary_path, recording_path = args.canary, args.recording
    if args.report is not None:
        check_output_path("--report", args.report)
    manifests, canary, recording = load_inputs(
        canary_path, args.template, recording_path, args.preset, args.mesh_provider
    )
    _check_supported(canary.spec.provider or args.mesh_provider)
    import asyncio
    import json

    from engine.cli.scheduled_commands import parse_scheduled_command

    commands = [parse_scheduled_command(text) for text in args.commands]
    result = asyncio.run(
        simulate(manifests, canary, recording, mesh_provider=args.mesh_provider, commands=commands)
    )
    if args.report is not None:
        _write_report(args.report, result, recording)
    if args.output == "json":
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(json.dumps(result.to_json(), indent=2))
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(render_timeline(result, colour=colour))
    return result.exit_code


def check_output_path(option: str, path: str) -> None:
    """Refuse an output path that cannot be written before spending time on the work (simulate
    and sweep ``--report``, report ``-o``)."""
    from pathlib import Path

    from config import Problem, SpecError

    target = Path(path)
    if target.is_dir():
        raise SpecError(
            Problem(option, f"{path} is a directory; give a file name like report.html")
        )
    if not target.parent.is_dir():
        raise SpecError(
            Problem(option, f"directory {target.parent} does not exist; create it first")
        )


def _write_report(path: str, result: SimulationResult, recording: Recording) -> None:
    """Write simulate's HTML report (plotly is imported only here); the JSON and the exit status
    stay what they are without --report (interfaces.md §3)."""
    from config import Problem, SpecError
    from engine.cli.report_html import write_simulation_report

    try:
        write_simulation_report(result, recording, path)
    except OSError as exc:
        raise SpecError(
            Problem("--report", f"cannot write {path}: {exc.strerror or exc}")
        ) from None
    print(f"report written to {path}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from engine.shell.notify import NotifyOptions
    from engine.shell.run import options_from_env, run_controller
    from traffic import RouterOptions

    options = options_from_env(
        kubeconfig=args.kubeconfig,
        namespaces=args.namespace,
        selector=args.selector,
        metrics_server=args.metrics_server,
        mesh_provider=args.mesh_provider,
        port=args.port,
        leader_elect=args.leader_elect,
        shards=args.shards,
        shard_index=args.shard_index,
        startup_spread=_duration_option("--startup-spread", args.startup_spread),
        event_webhook=args.event_webhook,
        routing=RouterOptions(
            selector_labels=_comma_list("--selector-labels", args.selector_labels),
            ingress_annotations_prefix=args.ingress_annotations_prefix,
            ingress_class=args.ingress_class,
        ),
        include_label_prefixes=_split_commas(args.include_label_prefix),
        config_tracking=args.enable_config_tracking,
        no_cross_namespace_refs=args.no_cross_namespace_refs,
        kubeconfig_service_mesh=args.kubeconfig_service_mesh,
        version=_version(),
        # SLACK_URL, SLACK_TOKEN, SLACK_PROXY_URL, MSTEAMS_URL, MSTEAMS_PROXY_URL win, as in Flagger
        notify=NotifyOptions.from_flags(
            slack_url=args.slack_url,
            slack_token=args.slack_token,
            slack_proxy_url=args.slack_proxy_url,
            slack_user=args.slack_user,
            slack_channel=args.slack_channel,
            msteams_url=args.msteams_url,
            msteams_proxy_url=args.msteams_proxy_url,
            cluster_name=args.cluster_name,
        ),
    )
    import asyncio

    return asyncio.run(run_controller(options))


def _loadtester(args: argparse.Namespace) -> int:
    from config import CanaryEngineError, Problem, SpecError, parse_duration
    from engine.cli.loadtester import LoadTesterOptions, run_loadtester

    try:
        max_duration = parse_duration(args.max_duration)
    except ValueError as exc:
        raise SpecError(Problem("--max-duration", str(exc))) from None
    if max_duration <= 0:
        raise SpecError(
            Problem("--max-duration", f"must be longer than 0, got {args.max_duration!r}")
        )
    if not 0 <= args.port <= 65535:
        raise SpecError(Problem("--port", f"must be 0..65535, got {args.port}"))
    namespace_regexp = None
    if args.namespace_regexp:
        import re

        try:
            namespace_regexp = re.compile(args.namespace_regexp)
        except re.error as exc:
            raise SpecError(
                Problem("--namespace-regexp", f"not a regular expression: {exc}")
            ) from None
    options = LoadTesterOptions(
        port=args.port,
        bind=args.bind,
        allow_commands=args.allow_commands,
        max_duration=max_duration,
        namespace_regexp=namespace_regexp,
    )
    import asyncio

    try:
        return asyncio.run(run_loadtester(options))
    except OSError as exc:  # the port is taken, the address is not ours...
        raise CanaryEngineError(
            f"loadtester cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}"
        ) from None


def _report(args: argparse.Namespace) -> int:
    from engine.cli.report_cluster import ReportOptions, run_report

    return run_report(
        ReportOptions(
            name=args.name,
            output=args.output,
            namespace=args.namespace,
            kubeconfig=args.kubeconfig,
            context=args.context,
            prometheus=args.prometheus,
            start=args.start,
            end=args.end,
            mesh_provider=args.mesh_provider,
        )
    )


def _get(args: argparse.Namespace) -> int:
    import asyncio

    from engine.cli.get import EXIT_INTERRUPTED, GetOptions, run_get

    options = GetOptions(
        name=args.name,
        namespace=args.namespace,
        kubeconfig=args.kubeconfig,
        context=args.context,
        watch=args.watch,
        output=args.output,
    )
    terminal = sys.stdout.isatty()
    colour = terminal and "NO_COLOR" not in os.environ
    try:
        return asyncio.run(
            run_get(options, sys.stdout, colour=colour, in_place=terminal and args.watch)
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _operator_command(args: argparse.Namespace) -> int:
    import asyncio

    from engine.cli.operator import CommandNotSent, run_command
    from engine.shell.clock import RealClock

    try:
        sent = asyncio.run(
            run_command(
                command=args.command,
                name=args.name,
                namespace=args.namespace,
                full=getattr(args, "full", False),
                replace=args.replace,
                kubeconfig=args.kubeconfig,
                context=args.context,
                clock=RealClock(),
            )
        )
    except CommandNotSent as exc:
        print(_redacted(f"canary-engine: {exc}"), file=sys.stderr)
        return exc.exit_code
    print(sent.describe())
    return 0


def _check_mesh_provider(provider: str) -> None:
    """SpecError naming the option when no router serves ``provider``."""
    from config import NotSupportedError, Problem, SpecError

    try:
        _check_supported(provider)
    except NotSupportedError as exc:
        raise SpecError(Problem("--mesh-provider", str(exc))) from None


def _check_supported(provider: str) -> None:
    from config import NotSupportedError
    from traffic import not_built_message, router_module

    if router_module(provider) is None:
        raise NotSupportedError(not_built_message(provider))


@functools.cache
def _freeze_at_exit() -> None:
    """Register, once, the freeze of whatever is alive when the interpreter exits."""
    atexit.register(gc.freeze)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """For a quick command (``_QUICK_COMMANDS``), Python's cyclic garbage collector is only
    cost: importing pydantic and building the models leaves some 30,000 long-lived containers,
    which the collector scans again and again while they are made (about 10 ms of ``validate``'s
    start-up) and once more as the interpreter exits (about 20 ms), to free nothing. So it is off
    while the command runs (and back on after, for a caller in the same process such as the
    tests), and what is alive at exit is frozen so that the last collection skips it. Refcounting
    still frees everything outside a cycle; the cycles a run leaves are few and bounded by the
    files it reads. (``gc.freeze`` runs from ``atexit``, not here, so that a process that goes on
    after the command keeps collecting.)"""
    _freeze_at_exit()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """Spare a quick command (``_QUICK_COMMANDS``) pydantic's plugin discovery. The first time
    pydantic builds a model it looks for plugins in the entry points of every installed
    distribution; importing ``importlib.metadata`` for that (with email, zipfile and csv) is
    about 15 ms of a 150 ms start-up. canary-engine uses no pydantic plugin, so while the command
    runs a module that answers "none" stands in for the loader (pydantic's own switch,
    ``PYDANTIC_DISABLE_PLUGINS``, still imports it); it is taken away after, so a process that
    goes on (the tests, a tool embedding the command) finds its plugins on its next model. Nothing
    changes if pydantic already looked in this process. If a later pydantic moves its loader, the
    stand-in is never read and discovery runs as before; a test pins that ``validate`` avoids
    it."""
    name = "pydantic.plugin._loader"
    if name in sys.modules:
        yield
        return
    import types

    loader = types.ModuleType(name, "no pydantic plugins (engine.cli)")
    loader.get_plugins = tuple  # type: ignore[attr-defined]
    sys.modules[name] = loader
    try:
        yield
    finally:
        if sys.modules.get(name) is loader:
            del sys.modules[name]


def _validate(args: argparse.Namespace) -> int:
    from analysis import template_problems
    from config import DEFAULT_MESH_PROVIDER, SpecError, load_manifests
    from engine.cli._object_shapes import object_problems

    # Importing traffic registers the router modules' provider rules, which the loader checks.
    from traffic import not_built_problems

    bad = False
    for path in args.files:
        try:
            found = load_manifests([path], preset=args.preset, default_provider=args.mesh_provider)
        except SpecError as exc:
            print(_redacted(exc.render()), file=sys.stderr)
            bad = True
            continue
        problems = [
            f"{path} [Canary/{c.metadata.name}] {problem}"
            for c in found.canaries
            for problem in not_built_problems(
                c, c.spec.provider or args.mesh_provider or DEFAULT_MESH_PROVIDER
            )
        ]
        problems += [  # each metric provider module says what it needs (analysis.providers)
            f"{path} [MetricTemplate/{t.metadata.name}] {field}: {message}"
            for t in found.templates
            for field, message in template_problems(t)
        ]
        # the Kubernetes objects beside them, typed as the API server types what we read
        problems += [str(p) for p in object_problems(found.objects, path)]
        if problems:  # an address may carry user:password@ (masked as everywhere else)
            print(_redacted("\n".join(problems)), file=sys.stderr)
            bad = True
            continue
        counts = [
            f"{len(found.canaries)} " + ("Canary" if len(found.canaries) == 1 else "Canaries"),
            f"{len(found.templates)} MetricTemplate" + ("" if len(found.templates) == 1 else "s"),
            f"{len(found.alert_providers)} AlertProvider"
            + ("" if len(found.alert_providers) == 1 else "s"),
        ]
        found_any = found.canaries or found.templates or found.alert_providers
        # Still valid (a directory of manifests mixes in Deployments), but a file with nothing
        # to check says so, rather than looking like a checked Canary.
        note = "" if found_any else "; no flagger.app/v1beta1 manifest in it, nothing was checked"
        print(f"{path}: valid ({', '.join(counts)}){note}")
    return EXIT_BAD_INPUT if bad else 0


#: Each command's handler, and whether it configures the logs first (``validate``, ``record``,
#: ``get`` and the operator commands print their own lines). Every other command is an operator
#: command (``OPERATOR_COMMANDS``).
_HANDLERS: dict[str, tuple[Callable[[argparse.Namespace], int], bool]] = {
    "simulate": (_simulate, True),
    "sweep": (_sweep, True),
    "validate": (_validate, False),
    "record": (_record, False),
    "run": (_run, True),
    "loadtester": (_loadtester, True),
    "get": (_get, False),
    "report": (_report, True),
}
