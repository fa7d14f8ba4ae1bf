"""Inputs a fuzzer found crashing a command with a traceback (exit 1, which reads as "rolled
back" or "no such Canary"): each is now exit 2 naming what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
SWEEP = EXAMPLES / "whatif" / "sweep.yaml"


@pytest.mark.parametrize("preset", ["[staging]", "{a: 1}"])
def test_a_sweep_preset_that_is_not_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], preset: str
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"canary: {EXAMPLES / 'webhook-server.yaml'}\nsettings:\n  - preset: {preset}\n"
    )
    assert main(["sweep", str(sweep), "--recordings", str(EXAMPLES / "whatif")]) == 2
    assert "preset: unknown preset" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"recording,label\n\xff\xfe,good\n", "labels must be UTF-8 text"),
        (b"recording,label\n" + b"x" * 200_000 + b",good\n", "labels are not valid CSV"),
    ],
)
def test_a_sweep_labels_file_that_is_not_utf8_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content)
    code = main(["sweep", str(SWEEP), "--labels", str(labels)])
    assert code == 2 and expected in capsys.readouterr().err


@pytest.mark.parametrize(
    "kubeconfig",
    [
        "",
        "[" * 100_000,
        "apiVersion: v1\nclusters: [{name: c, cluster: {server: 5}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
        "users: [{name: u, user: {token: t}}]\n",
    ],
    ids=["empty", "nested 100,000 deep", "a server that is a number"],
)
def test_a_kubeconfig_the_client_library_chokes_on(tmp_path: Path, kubeconfig: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "get",
            "web",
            "-n",
            "staging",
            "--kubeconfig",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert "cannot load the Kubernetes configuration" in done.stderr
    assert "Traceback" not in done.stderr and "object at 0x" not in done.stderr
    assert "NoneType" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "simulate", "sweep"])
def test_a_mesh_provider_flagger_would_not_accept(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    args = {
        "validate": ["validate", str(EXAMPLES / "webhook-server.yaml")],
        "simulate": ["simulate"],
        "sweep": ["sweep"],
    }[command]
    assert main([*args, "--mesh-provider", "istio:"]) == 2
    assert "unknown provider 'istio:'" in capsys.readouterr().err


HOSTILE_CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: webhook-server, namespace: staging}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: webhook-server}
  service: {port: 80}
  analysis:
    interval: 60s
    threshold: 2
    maxWeight: 30
    stepWeight: 15
    webhooks:
      - name: "h<a href=\\"https://evil.example/\\">hook</a>"
        type: pre-rollout
        url: http://127.0.0.1:9/unreachable
        timeout: 1s
    metrics:
      - name: "rate\\e[2J\\e[H\\e[32mall good"
        query: up
        thresholdRange: {min: 99}
"""


def test_names_from_the_manifest_reach_the_terminal_printable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(HOSTILE_CANARY)
    recording = tmp_path / "rec.csv"
    recording.write_text(
        "time,target,metric,value\n"
        + "".join(f"{t},canary,rate\x1b[2J\x1b[H\x1b[32mall good,99.9\n" for t in range(0, 600, 60))
    )
    report = tmp_path / "report.html"
    main(
        [
            "simulate",
            "--canary",
            str(canary),
            "--recording",
            str(recording),
            "--report",
            str(report),
        ]
    )
    shown = capsys.readouterr()
    assert "\x1b[2J" not in shown.out + shown.err
    assert "rate\\x1b[2J\\x1b[H\\x1b[32mall good" in shown.out
    # the report: plotly draws its own HTML in axis labels, so names are escaped there too
    html = report.read_text()
    assert "\\u003ca href" not in html  # no raw <a> in the figures' data (JSON-escaped "<")
    # the name, as text: "<" escaped so no tag opens, the quotes as quotes (plotly drew
    # "&quot;" literally), JSON-escaped inside the figure's data
    assert 'h&lt;a href=\\"https:\\u002f\\u002fevil.example' in html


def test_validate_quotes_hostile_values_printable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(
        HOSTILE_CANARY.replace(
            "provider: kubernetes", 'provider: "istio\\e[2J\\e[32mFAKE: valid\\r"'
        )
    )
    assert main(["validate", str(canary)]) == 2
    err = capsys.readouterr().err
    assert "unknown provider" in err and "\x1b" not in err and "\r" not in err
    assert "istio\\x1b[2J" in err


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_reader_that_stops_early_ends_the_command_quietly(output: str) -> None:
    # `canary-engine simulate | head` printed a BrokenPipeError traceback when head had gone
    # before the timeline was written. Here the reader is gone before the command writes at all.
    with subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "simulate", "--output", output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as run:
        assert run.stdout is not None and run.stderr is not None
        run.stdout.close()
        err = run.stderr.read().decode()
        assert run.wait(timeout=60) == 141  # as a process that SIGPIPE ended
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_a_command_run_with_stdout_closed_still_succeeds() -> None:
    # Under a supervisor that closes fd 1, sys.stdout is None: flushing it raised AttributeError.
    import os

    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(EXAMPLES / "webhook-server.yaml")],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),  # the child starts with fd 1 closed
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("sweep_text", "expected"),
    [
        # two unknown keys of different types could not be sorted: a TypeError traceback
        ("{1: x, zz: y}\n", "1: unknown key; a sweep file has canary"),
        ("{1: x, ~: y}\n", "1: unknown key; a sweep file has canary"),
        # a setting that makes analysis.metrics no list, then names one of its metrics
        (
            f"canary: {EXAMPLES / 'webhook-server.yaml'}\nsettings:\n"
            "  - {analysis.metrics: 1, 'metrics[request-success-rate].thresholdRange.min': 95}\n",
            "spec.analysis.metrics: must be a list, got 1",
        ),
        ("falseRollbackLimit: [" + "7, " * 5000 + "]\n", "got [7, 7, 7"),
    ],
    ids=["int and str keys", "int and null keys", "metrics no list", "huge limit"],
)
def test_a_sweep_file_with_keys_or_settings_of_other_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sweep_text: str, expected: str
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(sweep_text)
    assert main(["sweep", str(sweep), "--recordings", str(EXAMPLES / "whatif")]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err) < 1000, err[:1000]
