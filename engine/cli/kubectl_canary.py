"""``kubectl-canary``: canary-engine as a kubectl plugin (``kubectl canary promote NAME -n NS``).

kubectl runs ``kubectl-canary`` from the PATH with the words after ``canary``. The plugin is the
canary-engine command line under another name: every canary-engine subcommand that makes sense
from a workstation (``promote``, ``abort``, ``retry``, ``pause``, ``resume``, ``get``, ...) is
passed through unchanged, so a subcommand added to canary-engine is a kubectl one too. Only the
servers (``run``, ``loadtester``) are left out: they belong in a Deployment, not behind kubectl.
Like ``canary-engine --help``, ``kubectl canary --help`` imports nothing heavy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

#: canary-engine subcommands that are servers, not commands a person runs through kubectl.
NOT_KUBECTL = frozenset({"run", "loadtester"})
PROG = "kubectl canary"


def main(argv: Sequence[str] | None = None) -> int:
    from engine import cli

    args = list(sys.argv[1:] if argv is None else argv)
    parser = cli.build_parser(prog=PROG)
    parser.description = "canary-engine as a kubectl plugin: operate Flagger Canaries."
    for name in NOT_KUBECTL:
        _hide(parser, name)
    first = next((a for a in args if not a.startswith("-")), None)
    if first in NOT_KUBECTL:
        sys.stderr.write(
            f"{PROG}: {first} is a server, not a kubectl command: run it as "
            f"canary-engine {first} (see canary-engine {first} --help)\n"
        )
        return cli.EXIT_BAD_INPUT
    return cli.main(args, parser=parser)


def _hide(parser: argparse.ArgumentParser, name: str) -> None:
    """Drop a subcommand from the plugin's parser (its usage, its help and its choices)."""
    import argparse

    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            action.choices.pop(name, None)
            action._choices_actions = [a for a in action._choices_actions if a.dest != name]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
