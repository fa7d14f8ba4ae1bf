"""The ``canary-engine`` command line's arguments: every command's parser and options, with their
defaults from ``CANARY_ENGINE_<OPTION>``, and Flagger's own one-dash flags read for ``run``.

Nothing heavy is imported here (config, numpy, httpx, kubernetes-asyncio): ``--help`` builds the
whole parser and must start fast (README "Start-up").
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Final

#: config.DEFAULT_MESH_PROVIDER, spelled out: importing config (pydantic) would slow --help. A
#: test keeps the two equal.
MESH_PROVIDER_DEFAULT = "kubernetes"


#: The names of config.PRESETS, without importing config for ``--help`` (a test keeps them equal).
PRESET_NAMES = ("development", "production", "staging")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("canary-engine")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"canary-engine {_version()}")
        parser.exit()


def _env_default(option: str, default: str | None) -> str | None:
    """Every option may come from CANARY_ENGINE_<OPTION> (interfaces.md §1)."""
    return os.environ.get(f"CANARY_ENGINE_{option.upper().replace('-', '_')}", default)


def _env_int(option: str, default: int) -> str:
    """An integer option's default from the environment, left as text: argparse converts it with
    the option's ``type=int`` only for the command run, and names the option when it is not a
    number (``argument --port: invalid int value``), where int() here would be a traceback for
    every command."""
    return _env_default(option, None) or str(default)


def _env_flag(option: str) -> bool:
    return _env_default(option, "") in ("1", "true", "True")


def _bool_value(text: str) -> bool:
    """A flag's value as Go's strconv.ParseBool reads it (Flagger's ``-flag=false``)."""
    lowered = text.strip().lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(prog: str = "canary-engine") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Flagger-compatible progressive delivery: controller, simulator, recorder.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _simulate_parser(sub)
    _sweep_parser(sub)
    _validate_parser(sub)
    _run_parser(sub)
    _record_parser(sub)
    _loadtester_parser(sub)
    _get_command(sub)
    _report_command(sub)
    _operator_commands(sub)
    return parser


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``simulate``: replay a Canary against a recording on a virtual clock."""
    sim = sub.add_parser(
        "simulate",
        help="replay the state machine against recorded metrics on a virtual clock",
        description="Replay a Canary against a recording (CSV or JSON). With no arguments, replays "
        "the bundled webhook-server example. Exit status: 0 promoted, 1 rolled back, "
        "3 undecided, 2 bad input.",
    )
    _canary_file_options(
        sim,
        canary_help="YAML with a flagger.app/v1beta1 Canary "
        "(may also hold MetricTemplates, AlertProviders and the target Deployment)",
    )
    sim.add_argument("--recording", metavar="FILE", help="recorded metrics, .csv or .json")
    sim.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="fill analysis settings from an environment preset; fields in the Canary win",
    )
    sim.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="table: a readable timeline (default); json: one JSON document",
    )
    _mesh_provider_option(sim, default=MESH_PROVIDER_DEFAULT)
    sim.add_argument(
        "--command",
        dest="commands",
        metavar="TIME:COMMAND",
        action="append",
        default=[],
        help="send an operator command at a time of the run, as the controller would get it "
        "(repeatable): TIME in seconds since the new revision or a duration (5m), COMMAND one "
        "of promote, promote-full (promote --full), abort, retry, pause, resume; "
        "e.g. --command 120:pause --command 10m:resume",
    )
    sim.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write an HTML report (weights, phases, events, every check with its reason); "
        "one self-contained file that opens offline",
    )
    _log_options(sim, default_level="error")


def _validate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``validate``: check manifests without a cluster."""
    val = sub.add_parser(
        "validate",
        help="check Canary / MetricTemplate / AlertProvider manifests",
        description="Validate manifests; every problem is printed with its field path. "
        "Exit status: 0 valid, 2 invalid.",
    )
    val.add_argument("files", nargs="+", metavar="FILE")
    val.add_argument("--preset", choices=PRESET_NAMES, help="validate as merged with a preset")
    val.add_argument(
        "--mesh-provider",
        default=None,
        help="check Canaries without spec.provider against this router's rules, as the "
        "controller run with it does (default: only Canaries that name their provider)",
    )


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``run``: the in-cluster controller, with Flagger's flags."""
    run = sub.add_parser(
        "run",
        help="the in-cluster controller",
        description="Watch Canaries and drive them (Flagger's controller). Every option can also "
        "come from CANARY_ENGINE_<OPTION>, e.g. CANARY_ENGINE_METRICS_SERVER.",
    )
    _kubeconfig_option(run)
    run.add_argument(
        "--kubeconfig-service-mesh",
        default=_env_default("kubeconfig-service-mesh", None),
        metavar="FILE",
        help="kubeconfig of the service mesh's control plane cluster: the routers' mesh and "
        "gateway objects (VirtualService, HTTPRoute, TrafficSplit, ...) go there, Services, "
        "Deployments, Ingresses and Knative Services stay on the main cluster (Flagger's "
        "-kubeconfig-service-mesh; default: all on the main cluster)",
    )
    run.add_argument(
        "--namespace",
        action="append",
        default=_env_list("namespace"),
        help="watch only this namespace (repeatable; default all)",
    )
    run.add_argument(
        "--selector",
        default=_env_default("selector", None),
        help="only Canaries with these labels (key=value[,key=value])",
    )
    run.add_argument(
        "--metrics-server",
        default=_env_default("metrics-server", "http://prometheus:9090"),
        help="default Prometheus for builtin metrics (Flagger's -metrics-server)",
    )
    _mesh_provider_option(run, default=MESH_PROVIDER_DEFAULT)
    run.add_argument(
        "--port",
        type=int,
        default=_env_int("port", 8080),
        help="port for /healthz, /readyz and /metrics",
    )
    run.add_argument(
        "--shards",
        type=int,
        default=_env_int("shards", 1),
        help="spread the Canaries over N controller processes by a stable hash (default 1)",
    )
    run.add_argument(
        "--shard-index",
        type=int,
        default=_env_int("shard-index", 0),
        help="which of the --shards this process drives, 0..N-1 (default 0)",
    )
    run.add_argument(
        "--startup-spread",
        default=_env_default("startup-spread", "0s"),
        metavar="DURATION",
        help="spread the first ticks of the Canaries found at start over this time (a restart "
        "or a new leader of a large fleet); default 0s: all at once, as Flagger",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        default=_env_flag("leader-elect"),
        help="run several replicas; only the Lease holder acts",
    )
    run.add_argument(
        "--selector-labels",
        default=_env_default("selector-labels", "app,name,app.kubernetes.io/name"),
        metavar="LABELS",
        help="the target's selector labels to look for, in order (Flagger's -selector-labels; "
        "default app,name,app.kubernetes.io/name)",
    )
    run.add_argument(
        "--include-label-prefix",
        default=_env_default("include-label-prefix", ""),
        metavar="PREFIXES",
        help="copy the target's labels with these prefixes (comma separated) to the primary "
        "(Flagger's -include-label-prefix; default none)",
    )
    _bool_option(
        run,
        "enable-config-tracking",
        default=True,
        help="copy the ConfigMaps and Secrets a target uses to -primary ones (Flagger's "
        "-enable-config-tracking; default true)",
    )
    _bool_option(
        run,
        "no-cross-namespace-refs",
        default=False,
        help="refuse Canaries whose MetricTemplate, AlertProvider or gloo upstream reference "
        "names another namespace (Flagger's -no-cross-namespace-refs; default false)",
    )
    run.add_argument(
        "--ingress-annotations-prefix",
        default=_env_default("ingress-annotations-prefix", "nginx.ingress.kubernetes.io"),
        help="annotation prefix of the nginx router's canary Ingress (Flagger's "
        "-ingress-annotations-prefix)",
    )
    run.add_argument(
        "--ingress-class",
        default=_env_default("ingress-class", ""),
        help="ingress class of the contour router's objects (Flagger's -ingress-class)",
    )
    run.add_argument(
        "--event-webhook",
        metavar="URL",
        default=_env_default("event-webhook", None),
        help="send every event of a Canary without type: event webhooks here (Flagger's "
        "-event-webhook; env EVENT_WEBHOOK_URL wins)",
    )
    _alert_options(run)
    _log_options(run, default_level="info")


def _record_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``record``: capture a recording from the metric providers."""
    rec = sub.add_parser(
        "record",
        help="capture a recording from Prometheus and the other metric providers",
        description="Run every metric of a Canary as a range query, for the canary target and "
        "the -primary target, and write a recording simulate replays. Non-Prometheus "
        "MetricTemplates query their own provider, with credentials from the Secrets in the "
        "given files. Exit status: 0 written, 2 bad input, 4 a provider unreachable or "
        "rejected a query.",
    )
    rec.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus base URL (required when a check queries Prometheus)",
    )
    _canary_file_options(rec, canary_help="YAML with the Canary (and templates)")
    rec.add_argument(
        "--start",
        metavar="T",
        help="RFC 3339, Unix seconds, 'now', or a duration before now (-15m, -2h)",
    )
    rec.add_argument("--end", metavar="T", help="same forms as --start")
    rec.add_argument(
        "--step",
        metavar="DURATION",
        help="sample spacing (default: the Canary's analysis interval)",
    )
    rec.add_argument(
        "-o", dest="output", metavar="FILE", help="output file; .csv or .json picks the format"
    )
    rec.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="fill the Canary's analysis settings from a preset first",
    )
    _mesh_provider_option(rec, default=None)


def _loadtester_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``loadtester``: flagger-loadtester's HTTP API."""
    lt = sub.add_parser(
        "loadtester",
        help="Flagger's load tester API (flagger-loadtester) with a built-in hey",
        description="Serve flagger-loadtester's HTTP API: POST / runs metadata.cmd from a "
        "webhook (type cmd: in the background, answered 202 at once; type blocking or bash: "
        "to completion), /gate/{approve,halt,check,open,close}, /rollback/{check,open,close}, "
        "/healthz. hey commands run on a built-in hey (no shell, no hey binary); any other "
        "command is refused unless --allow-commands. Every option can also come from "
        "CANARY_ENGINE_<OPTION>, e.g. CANARY_ENGINE_MAX_DURATION.",
    )
    lt.add_argument(
        "--port",
        type=int,
        default=_env_int("port", 8080),
        help="port to serve on (default 8080; 0 picks a free one)",
    )
    lt.add_argument(
        "--bind",
        default=_env_default("bind", "0.0.0.0"),
        help="address to listen on (default 0.0.0.0)",
    )
    lt.add_argument(
        "--allow-commands",
        action="store_true",
        default=_env_flag("allow-commands"),
        help="also run commands that are not hey, with bash -c as Flagger does (a shell "
        "for anyone who can reach the port: off by default)",
    )
    lt.add_argument(
        "--namespace-regexp",
        default=_env_default("namespace-regexp", None),
        metavar="REGEX",
        help="only webhooks from Canaries in namespaces matching REGEX may run tasks or use the "
        "gates; others get 403 (Flagger's -namespace-regexp; default: every namespace)",
    )
    lt.add_argument(
        "--max-duration",
        default=_env_default("max-duration", "1h"),
        metavar="DURATION",
        help="longest run: hey -z above it is refused, other runs stop at it (default 1h, "
        "Flagger's -timeout)",
    )
    _log_options(lt, default_level="info")


def _get_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    get = sub.add_parser(
        "get",
        help="show a Canary: phase, weights, checks against their bounds, webhooks, events",
        description="Show a Canary as the controller last recorded it: phase, stepped and "
        "achieved weights, iterations and failed checks against the threshold, each metric's "
        "last value against its bound (or the judge's verdict), webhook answers and the last "
        "events. Colour on a terminal, plain when piped or NO_COLOR is set. Exit status: 0 "
        "shown, 1 not found, 4 no usable kubeconfig, or the Kubernetes API is unreachable or "
        "refused, 130 interrupted.",
    )
    _canary_name_arguments(get)
    get.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="keep watching: print again whenever the Canary or its events change (Ctrl-C ends)",
    )
    get.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="table (default) or json: one JSON document (with --watch: one per line)",
    )
    _cluster_options(get)


def _report_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="an HTML report of a Canary's last rollout: recorded from Prometheus and replayed",
        description="What happened to a Canary's last rollout: read its status and events from "
        "the cluster, record its last analysis window (the newest 'New revision detected!' "
        "event to the end of the run, or now) from Prometheus as `record` does, replay it as "
        "`simulate` does and write the HTML report. Exit status: 0 written, 1 the Canary does "
        "not exist, 2 bad input, 4 the Kubernetes API or Prometheus unreachable or refused.",
    )
    _canary_name_arguments(report)
    report.add_argument(
        "-o", dest="output", metavar="FILE.html", required=True, help="the report to write"
    )
    report.add_argument(
        "--prometheus",
        metavar="URL",
        default=_env_default("prometheus", None),
        help="Prometheus base URL every query goes to (default: the Canary's spec.metricsServer)",
    )
    report.add_argument(
        "--start",
        metavar="T",
        help="the window's start instead of the newest 'New revision detected!' event "
        "(RFC 3339, Unix seconds, or a duration before now such as -2h)",
    )
    report.add_argument(
        "--end",
        metavar="T",
        help="the window's end (default: the status' lastTransitionTime once the run ended, "
        "else now)",
    )
    _cluster_options(report)
    _mesh_provider_option(report, default=None)
    _log_options(report, default_level="error")


def _sweep_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="what-if: replay a grid of settings over many recordings",
        description="Replay every setting of a grid (a YAML sweep file) against every recording "
        "and report, per setting, what it decides: promoted / rolled back / undecided, and with "
        "labelled recordings the detection rate, false rollbacks and time to detect; best "
        "settings first. Exit status: 0 done, 2 bad input.",
    )
    sweep.add_argument(
        "sweep_file",
        metavar="SWEEP.yaml",
        nargs="?",
        help='the grid (README "What-if"); default: the bundled example, '
        "config/examples/whatif/sweep.yaml",
    )
    _canary_file_options(
        sweep, canary_help="the Canary (overrides the file's)", template_help="MetricTemplates"
    )
    sweep.add_argument(
        "--recordings",
        metavar="PATH",
        action="append",
        default=[],
        help="recording files or folders (repeatable; override the file's)",
    )
    sweep.add_argument("--labels", metavar="FILE", help="CSV recording,label (good or bad)")
    sweep.add_argument(
        "--false-rollback-limit",
        type=float,
        metavar="FRACTION",
        help="rank settings within this false-rollback rate first (default 0.02)",
    )
    sweep.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sweep.add_argument("--report", metavar="FILE.html", help="also write an HTML report")
    sweep.add_argument(
        "--full-engine",
        action="store_true",
        help="replay every pair through the engine instead of the batch replay",
    )
    _mesh_provider_option(sweep, default=MESH_PROVIDER_DEFAULT)
    _log_options(sweep, default_level="error")


#: The operator commands (engine.core.commands) and what each does, for --help.
OPERATOR_COMMANDS = {
    "promote": "advance one step now (one weight step or iteration); with --full, skip the rest "
    "of the analysis and promote",
    "abort": "roll back now: all traffic to the primary, canary scaled to zero, phase Failed "
    "(until a new revision or retry)",
    "retry": "start the analysis of the current revision again after an abort or a failure",
    "pause": "hold the weight: no checks counted and no progress deadline until resume",
    "resume": "continue a paused analysis",
}


def _operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, summary in OPERATOR_COMMANDS.items():
        command = sub.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Writes the command on the Canary "
            "(one JSON merge patch of its canary-engine.io/command annotation: only the RBAC "
            "verb patch on canaries.flagger.app is needed); the controller acts on it at once, "
            "exactly once, with an event, a log line and an alert. Exit status: 0 sent, "
            "1 no such Canary, 2 bad input, 4 the Kubernetes API is unreachable or refused, "
            "5 an earlier command is not handled yet.",
        )
        _canary_name_arguments(command)
        if name == "promote":
            command.add_argument(
                "--full",
                action="store_true",
                help="skip the rest of the analysis and promote the current revision",
            )
        command.add_argument(
            "--replace",
            action="store_true",
            help="replace an earlier command the controller has not handled yet (without it, "
            "that is refused, exit status 5)",
        )
        _cluster_options(command)


def _canary_file_options(
    parser: argparse.ArgumentParser,
    *,
    canary_help: str,
    template_help: str = "more YAML files with MetricTemplates (repeatable)",
) -> None:
    """``--canary FILE`` and the repeatable ``--template FILE`` (simulate, record, sweep)."""
    parser.add_argument("--canary", metavar="FILE", help=canary_help)
    parser.add_argument(
        "--template", metavar="FILE", action="append", default=[], help=template_help
    )


def _canary_name_arguments(parser: argparse.ArgumentParser) -> None:
    """``NAME`` and ``-n/--namespace`` of the commands that address one Canary in a cluster,
    checked as the API server checks them (a bad one is bad input, exit 2, before any request)."""
    parser.add_argument("name", metavar="NAME", type=_object_name, help="the Canary's name")
    parser.add_argument(
        "-n",
        "--namespace",
        type=_namespace_name,
        help="the Canary's namespace (default: the kubeconfig context's, else default)",
    )


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _object_name(text: str) -> str:
    """A Kubernetes object name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.',
    at most 253 characters, each dot-separated part starting and ending with a letter or
    digit)."""
    if 0 < len(text) <= 253 and all(_DNS_LABEL.fullmatch(part) for part in text.split(".")):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Kubernetes object name: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit, at most 253 characters"
    )


def _namespace_name(text: str) -> str:
    """A namespace name (a DNS-1123 label: at most 63 characters, no dots)."""
    if len(text) <= 63 and _DNS_LABEL.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a namespace name: lowercase letters, digits and '-', starting and "
        "ending with a letter or digit, at most 63 characters"
    )


def _kubeconfig_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        default=_env_default("kubeconfig", None),
        help="kubeconfig file (default: in-cluster, then $KUBECONFIG, ~/.kube/config)",
    )


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig`` and ``--context`` of the commands run from a workstation."""
    _kubeconfig_option(parser)
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")


def _bool_option(parser: argparse.ArgumentParser, option: str, *, default: bool, help: str) -> None:
    """``--OPTION``, ``--OPTION=true|false`` (as Go's flag package reads a bool) or
    CANARY_ENGINE_<OPTION>."""
    parser.add_argument(
        f"--{option}",
        type=_bool_value,
        nargs="?",
        const=True,
        # a string: argparse applies type= to it, so the environment's value is checked too
        default=_env_default(option, "true" if default else "false"),
        metavar="BOOL",
        help=help,
    )


def _mesh_provider_option(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    """``--mesh-provider``; ``record`` and ``report`` (one Canary) leave it None when unset and
    fall back to kubernetes themselves."""
    canaries = "Canaries" if default else "a Canary"
    parser.add_argument(
        "--mesh-provider",
        default=_env_default("mesh-provider", default),
        help=f"provider for {canaries} without spec.provider (default {MESH_PROVIDER_DEFAULT})",
    )


#: Flagger's global notifier flags: (option, default, help).
_ALERT_OPTIONS: Final = (
    ("slack-url", None, "Slack incoming webhook URL (env SLACK_URL wins)"),
    ("slack-token", None, "Slack bearer token (env SLACK_TOKEN wins)"),
    ("slack-proxy-url", None, "HTTP proxy for Slack (env SLACK_PROXY_URL wins)"),
    ("slack-user", "flagger", "Slack username (default flagger)"),
    ("slack-channel", None, "Slack channel (default general)"),
    ("msteams-url", None, "MS Teams webhook URL, used instead of Slack (env MSTEAMS_URL wins)"),
    ("msteams-proxy-url", None, "HTTP proxy for MS Teams (env MSTEAMS_PROXY_URL wins)"),
    ("cluster-name", None, "added as the Cluster field of every alert"),
)


def _alert_options(parser: argparse.ArgumentParser) -> None:
    """Flagger's global notifier flags; SLACK_URL, SLACK_TOKEN, SLACK_PROXY_URL, MSTEAMS_URL and
    MSTEAMS_PROXY_URL in the environment win over them, as in Flagger."""
    alerts = parser.add_argument_group(
        "alerts",
        "global notifier for Canaries without analysis.alerts (MS Teams if set, else Slack)",
    )
    for option, default, text in _ALERT_OPTIONS:
        alerts.add_argument(f"--{option}", default=_env_default(option, default), help=text)


def _log_options(parser: argparse.ArgumentParser, *, default_level: str) -> None:
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=_env_default("log-format", "auto"),
        help="auto: console on a terminal, JSON otherwise (logs go to stderr)",
    )
    parser.add_argument(
        "--log-level",
        default=_env_default("log-level", default_level),
        help=f"debug, info, warning or error (default {default_level})",
    )


#: Flagger's controller flags that ``run`` has under the same name.
_FLAGGER_SAME: Final = frozenset(
    {
        "kubeconfig",
        "kubeconfig-service-mesh",
        "metrics-server",
        "mesh-provider",
        "namespace",
        "port",
        "log-level",
        "selector-labels",
        "include-label-prefix",
        "enable-config-tracking",
        "ingress-annotations-prefix",
        "ingress-class",
        "event-webhook",
        "no-cross-namespace-refs",
        *(option for option, _, _ in _ALERT_OPTIONS),
    }
)


#: Flagger's tuning flags that mean nothing here (one worker per Canary, the Lease in the pod's
#: namespace, structlog's JSON): accepted and ignored, with a note, so that Flagger's args start.
_FLAGGER_UNNEEDED: Final = frozenset(
    {
        "threadiness",
        "kubeconfig-qps",
        "kubeconfig-burst",
        "control-loop-interval",
        "leader-election-namespace",
        "zap-encoding",
        "zap-replace-globals",
        "zap-stacktrace-level",
    }
)


_FLAGGER_BOOLS: Final = frozenset(
    {
        "enable-leader-election",
        "enable-config-tracking",
        "no-cross-namespace-refs",
        "zap-replace-globals",
    }
)


def _flagger_run_flags(args: list[str]) -> list[str]:
    """``run`` with Flagger's own flags as its chart writes them, Go style (one dash,
    ``-name=value`` or ``-name value``): those ``run`` has are read as its own,
    ``-enable-leader-election`` as ``--leader-elect``, and tuning flags with no use here are
    dropped with a note on stderr. Anything else is left to argparse (an unknown option)."""
    if not args or args[0] != "run":
        return args
    out = [args[0]]
    rest = iter(args[1:])
    for arg in rest:
        name, sep, value = arg[1:].partition("=")
        go_style = arg.startswith("-") and not arg.startswith("--") and len(name) > 1
        if not go_style:
            out.append(arg)
        elif name in _FLAGGER_SAME:
            out.append(f"--{name}{sep}{value}")
        elif name == "enable-leader-election":
            if (value or "true").lower() in ("true", "1", "t"):
                out.append("--leader-elect")
        elif name in _FLAGGER_UNNEEDED:
            if not sep and name not in _FLAGGER_BOOLS:
                next(rest, None)  # its value, given as the next argument
            print(f"canary-engine: Flagger's -{name} has no use here; ignored", file=sys.stderr)
        else:
            out.append(arg)
    return out


def _negative_times(argv: Sequence[str] | None) -> list[str]:
    """``record --start -15m``: argparse would read "-15m" as an option, so attach it (``=``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "record" not in args and "report" not in args:
        return args
    out: list[str] = []
    for arg in args:
        if out and out[-1] in ("--start", "--end") and arg.startswith("-") and arg != "--":
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _duration_option(option: str, text: str) -> float:
    from config import Problem, SpecError, parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise SpecError(Problem(option, str(exc))) from None
    if seconds < 0:
        raise SpecError(Problem(option, f"must not be negative, got {text!r}"))
    return seconds


def _split_commas(text: str | None) -> tuple[str, ...]:
    """``a, b,,c`` -> ``("a", "b", "c")``: a comma-separated option value, blanks dropped."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _comma_list(option: str, text: str) -> tuple[str, ...]:
    """A comma-separated option value that must name at least one item."""
    from config import Problem, SpecError

    items = _split_commas(text)
    if not items:
        raise SpecError(
            Problem(
                option, f"expected at least one comma-separated value (e.g. app,name), got {text!r}"
            )
        )
    return items


def _env_list(option: str) -> list[str]:
    return list(_split_commas(_env_default(option, None)))
