"""The command line imports what a command needs when it runs, so ``--help`` starts fast.

Timing is measured by ``benchmarks/bench_startup.py``; these tests only pin what makes it fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import config
from engine.cli import PRESET_NAMES

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "webhook-server.yaml"
HEAVY = ("numpy", "httpx", "kubernetes_asyncio", "pydantic", "config", "analysis", "traffic")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_help_imports_no_heavy_library() -> None:
    loaded = _modules_after(
        "import contextlib, io\n"
        "from engine.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_engine_package_loads_its_names_on_first_use() -> None:
    loaded = _modules_after("import engine")
    assert "engine.shell.loop" not in loaded and "numpy" not in loaded
    from engine import EngineDeps, VirtualClock

    assert (
        EngineDeps.__module__ == "engine.shell.loop"
        and VirtualClock.__module__ == "engine.shell.clock"
    )


def test_the_parsers_mesh_provider_default_is_the_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli import MESH_PROVIDER_DEFAULT, build_parser

    monkeypatch.delenv("CANARY_ENGINE_MESH_PROVIDER", raising=False)
    assert MESH_PROVIDER_DEFAULT == config.DEFAULT_MESH_PROVIDER
    for command in (["run"], ["simulate"]):
        assert build_parser().parse_args(command).mesh_provider == config.DEFAULT_MESH_PROVIDER


def test_preset_choices_match_the_presets() -> None:
    assert tuple(sorted(config.PRESETS)) == PRESET_NAMES


def test_run_defaults_are_the_traffic_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parser spells them out (importing traffic would slow --help); they must stay equal.
    from engine.cli import build_parser
    from traffic import DEFAULT_SELECTOR_LABELS, RouterOptions

    for name in ("SELECTOR_LABELS", "INGRESS_ANNOTATIONS_PREFIX", "INGRESS_CLASS"):
        monkeypatch.delenv(f"CANARY_ENGINE_{name}", raising=False)
    args = build_parser().parse_args(["run"])
    assert tuple(args.selector_labels.split(",")) == DEFAULT_SELECTOR_LABELS
    defaults = RouterOptions()
    assert args.ingress_annotations_prefix == defaults.ingress_annotations_prefix
    assert args.ingress_class == defaults.ingress_class


def test_validate_imports_no_numeric_or_network_library() -> None:
    """``validate`` reads the metric providers' and routers' declarations, not their clients."""
    loaded = _modules_after(
        "import contextlib, io\n"
        "from engine.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['validate', {str(EXAMPLE)!r}])"
    )
    heavy = {"numpy", "httpx", "kubernetes_asyncio", "botocore", "google.auth", "aiohttp"}
    # asyncio and ssl cost ~30 ms of a start-up whose target is 150 ms: only running uses them
    heavy |= {"asyncio", "ssl"}
    assert not loaded & heavy, sorted(loaded & heavy)


def test_the_analysis_package_loads_its_names_on_first_use() -> None:
    loaded = _modules_after("from analysis import redact")
    assert "numpy" not in loaded and "httpx" not in loaded


def test_validate_skips_pydantic_plugin_discovery() -> None:
    """Discovery imports importlib.metadata (with email, zipfile, csv): 15 ms of the start-up."""
    loaded = _modules_after(
        "import contextlib, io, sys\n"
        "before = 'importlib.metadata' in sys.modules\n"
        "from engine.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main(['validate', {str(EXAMPLE)!r}])\n"
        "assert status == 0, status\n"
        "if before:\n"  # an environment's start-up (a .pth file) may import it before us
        "    del sys.modules['importlib.metadata']"
    )
    assert "importlib.metadata" not in loaded


def test_validate_still_reports_every_problem_without_plugins_or_collector(
    tmp_path: Path,
) -> None:
    """The start-up measures change no verdict: pydantic still validates (the plugin loader's
    stand-in answers "no plugins"), and a broken manifest is still refused field by field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("stepWeight: 15", "stepWeight: ten", 1), encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(EXAMPLE), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{EXAMPLE}: valid" in done.stdout
    assert "stepWeight" in done.stderr and "Traceback" not in done.stderr


def test_validate_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """The collector is off only while ``validate`` runs: a process going on after it (as the
    test suite does) collects cycles again."""
    import gc

    from engine.cli import main

    assert gc.isenabled()
    assert main(["validate", str(EXAMPLE)]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["validate", str(EXAMPLE)]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_validate_gives_pydantic_its_plugin_loader_back() -> None:
    """The stand-in for pydantic's plugin loader lasts only while ``validate`` runs: a process
    that goes on finds its plugins on its next model (found by a reviewer)."""
    loaded = _modules_after(
        "import contextlib, io, sys\n"
        "from engine.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['validate', {str(EXAMPLE)!r}]) == 0\n"
        "assert 'pydantic.plugin._loader' not in sys.modules\n"
        "from pydantic import BaseModel\n"
        "class Later(BaseModel):\n"
        "    x: int\n"
        "loader = sys.modules['pydantic.plugin._loader']\n"
        "assert loader.__file__ and hasattr(loader, '_plugins'), loader\n"
    )
    assert "pydantic.plugin._loader" in loaded
