"""``kubectl-canary``, the kubectl plugin: the canary-engine commands a person runs, under kubectl.

What it does against a cluster is tested end to end in tests/e2e/test_commands_kube.py; here: its
help, what it passes through, and that it starts as fast as ``canary-engine --help``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engine.cli import OPERATOR_COMMANDS, build_parser
from engine.cli.kubectl_canary import NOT_KUBECTL, main
from tests.engine.test_cli_startup import HEAVY, _modules_after

ROOT = Path(__file__).resolve().parents[2]


def test_the_plugin_is_installed_as_kubectl_canary() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-canary"] == "engine.cli.kubectl_canary:main"


def test_help_lists_every_canary_engine_command_but_the_servers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kubectl canary ")
    listed = {
        line.split()[0]
        for line in out.splitlines()
        if line.startswith("    ") and not line.startswith("     ")  # not a wrapped line
    }
    every = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert listed == every - NOT_KUBECTL
    assert set(OPERATOR_COMMANDS) <= listed


def test_a_subcommand_keeps_its_options_under_the_plugin_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["promote", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: kubectl canary promote [-h] [-n NAMESPACE] [--full]")


@pytest.mark.parametrize("server", sorted(NOT_KUBECTL))
def test_servers_are_refused_with_where_to_run_them(
    capsys: pytest.CaptureFixture[str], server: str
) -> None:
    assert main([server]) == 2
    assert f"run it as canary-engine {server}" in capsys.readouterr().err


def test_a_missing_name_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["abort"])
    assert exit_.value.code == 2
    assert "the following arguments are required: NAME" in capsys.readouterr().err


def test_help_imports_no_heavy_library() -> None:
    loaded = _modules_after(
        "import contextlib, io\n"
        "from engine.cli.kubectl_canary import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['promote', '--help'])"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
