"""Hostile manifests: every malformed or abusive YAML file is a SpecError (exit 2) naming the file
and the line or field, never a traceback (README "Security and limits" → "Input bounds").

The findings of the adversarial probe (issue 10, "Input") each have a test; a hypothesis fuzz over
generated YAML text and over mutated valid manifests checks that nothing else escapes.
"""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import PRESETS, SpecError, load_manifests, read_documents
from config._yaml import MAX_ALIAS_NODES, MAX_YAML_DEPTH
from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 80
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
"""


def _write(tmp_path: Path, text: str, name: str = "canary.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _validate(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["validate", *extra, str(path)])
    return code, capsys.readouterr().err


def _billion_laughs(indent: str, levels: int = 9) -> str:
    """The classic alias bomb: about 350 bytes that expand to 9**levels strings."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"{indent}l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Duplicate keys
# ---------------------------------------------------------------------------------------------

DUPLICATE_ANALYSIS = (
    CANARY
    + """\
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
"""
)


def test_a_duplicate_key_names_the_key_and_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second `analysis:` used to replace the first: its metrics vanished, the canary promoted
    # with no analysis at all, and validate said "valid".
    path = _write(tmp_path, DUPLICATE_ANALYSIS)
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}:22: duplicate key 'analysis' (first at {path}:13)" in err, err
    assert "Traceback" not in err


def test_every_duplicate_key_is_reported_and_merge_keys_may_be_overridden(
    tmp_path: Path,
) -> None:
    text = """\
base: &base {a: 1, b: 2}
merged:
  <<: *base
  a: 3
other: {x: 1, y: 2, x: 3}
other: 4
"""
    with pytest.raises(SpecError) as caught:
        read_documents(_write(tmp_path, text, "dup.yaml"))
    rendered = caught.value.render()
    # overriding a key merged in with << is what merge keys are for: not a duplicate
    assert "'a'" not in rendered
    assert f"{tmp_path / 'dup.yaml'}:5: duplicate key 'x' (first at {tmp_path / 'dup.yaml'}:5)" in (
        rendered
    )
    assert f"{tmp_path / 'dup.yaml'}:6: duplicate key 'other'" in rendered


def test_a_duplicate_key_fails_simulate_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, DUPLICATE_ANALYSIS)
    code = main(
        [
            "simulate",
            "--canary",
            str(path),
            "--recording",
            str(EXAMPLES / "webhook-server-good.csv"),
        ]
    )
    assert code == 2
    assert f"{path}:22: duplicate key 'analysis'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Scalars the YAML library could not construct
# ---------------------------------------------------------------------------------------------


def test_an_impossible_date_is_a_string_as_in_kubernetes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # PyYAML's timestamp resolver raised ValueError on 2001-02-30; Kubernetes reads an unquoted
    # date as a string, and so do we.
    path = _write(tmp_path, CANARY.replace("  name: podinfo\n", "  name: 2001-02-30\n", 1))
    code, err = _validate(path, capsys)
    assert code == 0, err
    (canary,) = load_manifests([path]).canaries
    assert canary.metadata.name == "2001-02-30"
    assert read_documents(_write(tmp_path, "a: 2001-02-03\nb: !!timestamp x\n", "t.yaml")) == [
        {"a": "2001-02-03", "b": "x"}
    ]


@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "-" + "9" * 5000, "0x" + "f" * 5000, "9223372036854775808", ":".join("1" * 3000)],
)
def test_an_integer_beyond_64_bits_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = _write(tmp_path, CANARY.replace("threshold: 5", f"threshold: {value}"))
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}: line 15, column 16: refused: integer " in err, err
    assert "must fit in 64 bits" in err
    assert len(err) < 400  # the 5 000 digits are not echoed back


def test_the_largest_64_bit_integer_still_loads(tmp_path: Path) -> None:
    docs = read_documents(_write(tmp_path, "a: 9223372036854775807\nb: -9223372036854775808\n"))
    assert docs == [{"a": 2**63 - 1, "b": -(2**63)}]


@pytest.mark.parametrize(
    "scalar", ["!!int", "!!int abc", "!!bool maybe", "!!float x", "!!binary 'a'", "!!set 3"]
)
def test_a_tagged_scalar_its_constructor_cannot_read_names_the_line(
    tmp_path: Path, scalar: str
) -> None:
    path = _write(tmp_path, f"a: 1\nb: {scalar}\n")
    with pytest.raises(SpecError) as caught:
        read_documents(path)
    assert caught.value.render().startswith(f"{path}: line 2, column 4: "), caught.value.render()


def test_a_control_character_after_non_ascii_text_names_its_line(tmp_path: Path) -> None:
    """libyaml counts positions in UTF-8 bytes: the line is counted over bytes too (a comment
    in Japanese above moved it down, past the end of the file; found by a reviewer)."""
    path = _write(tmp_path, "# \u8aac\u660e\u3067\u3059\n" * 3 + "a: 1\nb: \x07\n")
    with pytest.raises(SpecError, match=r": line 5: invalid YAML: character #x0007"):
        read_documents(path)


def test_a_control_character_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: \x01\n")
    with pytest.raises(SpecError, match=r": line 2: invalid YAML: character #x0001"):
        read_documents(path)


# ---------------------------------------------------------------------------------------------
# Nesting and aliases
# ---------------------------------------------------------------------------------------------


def test_five_thousand_nested_brackets_are_refused_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, CANARY + "status:\n  x: " + "[" * 5000 + "]" * 5000 + "\n")
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}: line 23, column " in err, err
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in err


def test_nesting_within_the_bound_loads(tmp_path: Path) -> None:
    depth = MAX_YAML_DEPTH - 1  # the document's mapping is the first level
    docs = read_documents(_write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n"))
    value: Any = docs[0]["a"]
    for _ in range(depth - 1):
        (value,) = value
    assert value == []


@pytest.mark.parametrize(
    ("where", "indent"),
    [("status:\n  x:\n", "    "), ("  service:\n    port: 80\n    trafficPolicy:\n", "      ")],
)
def test_a_billion_laughs_is_refused_fast_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, indent: str
) -> None:
    # ~350 bytes in a Canary's status or service.trafficPolicy used to keep simulate busy > 20 s.
    bomb = _billion_laughs(indent)
    if where.startswith("status"):
        text = CANARY + where + bomb
    else:
        text = CANARY.replace("  service:\n    port: 80\n", where + bomb)
    path = _write(tmp_path, text)
    started = time.perf_counter()
    code, err = _validate(path, capsys)
    assert time.perf_counter() - started < 5
    assert code == 2
    assert f"{path}: line " in err
    assert f"aliases (*name) here expand to more than {MAX_ALIAS_NODES:,} extra nodes" in err
    code = main(
        [
            "simulate",
            "--canary",
            str(path),
            "--recording",
            str(EXAMPLES / "webhook-server-good.csv"),
        ]
    )
    assert code == 2
    assert "alias bomb" in capsys.readouterr().err


def test_ordinary_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    # Anchors are rare in Kubernetes manifests but legal YAML (kubectl accepts them): a budget on
    # what aliases expand to, not a ban, keeps them working.
    text = CANARY.replace(
        "      - name: request-success-rate\n        thresholdRange:\n          min: 99\n",
        "      - name: request-success-rate\n        interval: &every 1m\n"
        "        thresholdRange: &floor\n          min: 99\n"
        "      - name: request-duration\n        interval: *every\n"
        "        thresholdRange:\n          <<: *floor\n          max: 500\n",
    )
    (canary,) = load_manifests([_write(tmp_path, text)]).canaries
    metrics = canary.spec.effective_analysis.metrics
    assert [m.interval for m in metrics] == ["1m", "1m"]
    assert metrics[1].threshold_range is not None and metrics[1].threshold_range.max == 500


def test_aliases_just_under_the_budget_load(tmp_path: Path) -> None:
    per_copy = 1 + 9  # a list node and its nine strings
    copies = MAX_ALIAS_NODES // per_copy - 1
    text = "a: &a [" + ", ".join("x" * 9) + "]\nb: [" + ", ".join(["*a"] * copies) + "]\n"
    (doc,) = read_documents(_write(tmp_path, text))
    assert len(doc["b"]) == copies


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: &a [1, *a]\n")
    with pytest.raises(SpecError, match=r"line 1, column 11: refused: alias \*a refers to"):
        read_documents(path)


def test_aliases_cannot_nest_past_the_depth_bound(tmp_path: Path) -> None:
    half = MAX_YAML_DEPTH - 40
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    with pytest.raises(SpecError, match="nested more than 100 levels deep once its aliases"):
        read_documents(_write(tmp_path, text))


# ---------------------------------------------------------------------------------------------
# Wrong types reaching the preset merge
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analysis", "field"),
    [
        ("{metrics: [{name: [x]}]}", "spec.analysis.metrics[0].name"),
        ("{metrics: [{name: {a: 1}}]}", "spec.analysis.metrics[0].name"),
        ("{metrics: [[1], 2, null]}", "spec.analysis.metrics[0]"),
        ("{metrics: {name: x}}", "spec.analysis.metrics"),
        ("{metrics: [{name: request-duration, thresholdRange: [1]}]}", "thresholdRange"),
        ("[1, 2]", "spec.analysis"),
    ],
)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_wrong_types_merged_with_a_preset_are_field_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    analysis: str,
    field: str,
    preset: str,
) -> None:
    head = CANARY[: CANARY.index("  analysis:")]
    path = _write(tmp_path, head + f"  analysis: {analysis}\n")
    code, err = _validate(path, capsys, "--preset", preset)
    assert code == 2
    assert f"{path} [Canary/podinfo] " in err and field in err, err
    assert "Traceback" not in err


def test_a_spec_that_is_not_a_mapping_is_a_field_error_with_a_preset(tmp_path: Path) -> None:
    head = CANARY[: CANARY.index("spec:")]
    with pytest.raises(SpecError, match=r"\[Canary/podinfo\] spec: must be a mapping"):
        load_manifests([_write(tmp_path, head + "spec: [1]\n")], preset="staging")


def test_a_huge_wrong_value_is_quoted_short(tmp_path: Path) -> None:
    head = CANARY[: CANARY.index("  service:")]
    text = head + "  service: [" + ", ".join(["abcdef"] * 5000) + "]\n"
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text)])
    (line,) = [p for p in caught.value.render().splitlines() if "spec.service" in p]
    assert "must be a mapping, got ['abcdef'" in line and len(line) < 300


# ---------------------------------------------------------------------------------------------
# Fuzz: everything loads or is a SpecError
# ---------------------------------------------------------------------------------------------

_counter = itertools.count()

_YAML_PIECES = [
    *"[]{}:,-&*!|>'\"#%@`? \n\t\\.~=<",
    *"0123456789abcxyz",
    "  ",
    "\n  ",
    "\n- ",
    "<<",
    "<<: ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!int ",
    "!!bool ",
    "!!float ",
    "!!timestamp ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!python/object ",
    "!!str ",
    "---\n",
    "...\n",
    "2001-02-30",
    "2026-01-02T15:04:05Z",
    "9" * 40,
    "1e400",
    ".inf",
    ".nan",
    "yes",
    "null",
    "\x00",
    "\x85",
    "\ufeff",
    "é",
    "kind: Canary\n",
    "apiVersion: flagger.app/v1beta1\n",
    "spec: ",
    "analysis: ",
    "metrics: ",
    "name: ",
]


def _load_or_spec_error(directory: Path, text: str, preset: str | None) -> None:
    path = directory / f"fuzz-{next(_counter)}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_manifests([path], preset=preset)
    except SpecError as exc:
        assert exc.render()  # renders without failing
    finally:
        path.unlink()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.lists(st.sampled_from(_YAML_PIECES), max_size=60).map("".join),
    prefix=st.sampled_from(["", CANARY, CANARY + "status:\n  x: "]),
    preset=st.sampled_from([None, *sorted(PRESETS)]),
)
def test_fuzz_yaml_text_loads_or_is_a_spec_error(
    tmp_path: Path, text: str, prefix: str, preset: str | None
) -> None:
    _load_or_spec_error(tmp_path, prefix + text, preset)


_EXAMPLE_DOCS = [
    d for d in yaml.safe_load_all((EXAMPLES / "webhook-server.yaml").read_text()) if d is not None
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_EXAMPLE_PATHS = [[p for p in _paths(doc) if p] for doc in _EXAMPLE_DOCS]

_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["0s", "1ms", "9" * 30 + "h", "request-duration", "istio", "Service"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(
        st.sampled_from(["name", "min", "max", "x"]),
        st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2)),
        max_size=3,
    ),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), preset=st.sampled_from([None, *sorted(PRESETS)]))
def test_fuzz_wrong_types_anywhere_load_or_are_a_spec_error(
    tmp_path: Path, data: st.DataObject, preset: str | None
) -> None:
    docs = copy.deepcopy(_EXAMPLE_DOCS)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        index = data.draw(st.integers(min_value=0, max_value=len(docs) - 1))
        path = data.draw(st.sampled_from(_EXAMPLE_PATHS[index]))
        target: Any = docs[index]
        try:
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = data.draw(_ODD_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation changed the shape there
    _load_or_spec_error(tmp_path, yaml.safe_dump_all(docs), preset)


def test_a_duration_beyond_gos_longest_is_refused_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CANARY.replace(
        "      - name: request-success-rate\n",
        "      - name: request-success-rate\n        interval: " + "9" * 400 + "h\n",
    )
    code, err = _validate(_write(tmp_path, text), capsys)
    assert code == 2
    assert "spec.analysis.metrics[0].interval: must be at most Go's longest duration" in err
    assert "9" * 100 not in err  # the value is shortened, not echoed whole


def test_without_libyaml_the_same_bounds_hold_on_pyyamls_own_parser(tmp_path: Path) -> None:
    """A PyYAML built without libyaml reads manifests with its Python parser: same documents,
    same refusals (run in a subprocess, where importing yaml._yaml is made to fail)."""
    import subprocess
    import sys

    good = _write(tmp_path, CANARY, "good.yaml")
    nesting = MAX_YAML_DEPTH + 5
    deep = _write(tmp_path, "a: " + "[" * nesting + "]" * nesting + "\n", "deep.yaml")
    twice = _write(tmp_path, "a: 1\na: 2\n", "twice.yaml")
    probe = (
        "import sys\n"
        "sys.modules['yaml._yaml'] = None  # as if PyYAML had no libyaml\n"
        "from config import _yaml\n"
        "assert _yaml._EventSource.__module__ == 'config._yaml', _yaml._EventSource\n"
        "from config import SpecError\n"
        f"docs = _yaml.read_documents({str(good)!r})\n"
        "assert docs[0]['kind'] == 'Canary' and docs[0]['spec']['service']['port'] == 80\n"
        f"for path, reason in (({str(deep)!r}, 'levels deep'), ({str(twice)!r}, 'duplicate')):\n"
        "    try:\n"
        "        _yaml.read_documents(path)\n"
        "    except SpecError as exc:\n"
        "        assert reason in exc.render(), exc.render()\n"
        "    else:\n"
        "        raise AssertionError(path)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# ---------------------------------------------------------------------------------------------
# apiVersion, kind and name of another type, or huge (found by fuzzing mutated manifests)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "shown"),
    [
        ("[flagger.app/v1beta1]", "got ['flagger.app/v1beta1']"),  # was "got \"['flagger...']\""
        ("null", "got nothing"),  # was "got 'None'"
        ("1", "got 1"),  # was "got '1'"
        ("", "got nothing"),
    ],
)
def test_an_api_version_of_another_type_is_quoted_as_written(
    tmp_path: Path, api_version: str, shown: str
) -> None:
    text = CANARY.replace("apiVersion: flagger.app/v1beta1", f"apiVersion: {api_version}")
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text)])
    assert caught.value.render().endswith(f"apiVersion: must be flagger.app/v1beta1, {shown}")


def test_a_huge_api_version_kind_or_name_is_quoted_short(tmp_path: Path) -> None:
    # Each was echoed whole, the kind and name once per problem of the document: 15,000
    # characters for three fields of 5,000.
    text = CANARY.replace("apiVersion: flagger.app/v1beta1", "apiVersion: " + "v" * 5000)
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text, "api.yaml")])
    assert len(caught.value.render()) < 300, caught.value.render()[:300]
    text = CANARY.replace("kind: Canary", "kind: " + "K" * 5000).replace(
        "name: podinfo\n  namespace", "name: " + "n" * 5000 + "\n  namespace"
    )
    text = text.replace("apiVersion: flagger.app/v1beta1", "apiVersion: flagger.app/v1")
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text, "kind.yaml")])
    rendered = caught.value.render()
    assert len(rendered) < 400 and "kind.yaml ['KKK" in rendered, rendered[:400]
    text = CANARY.replace("kind: Canary", "kind: [Canary, 2]").replace(
        "apiVersion: flagger.app/v1beta1", "apiVersion: flagger.app/v2"
    )
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text, "list.yaml")])
    assert "list.yaml [['Canary', 2]/podinfo] apiVersion" in caught.value.render()


# ---------------------------------------------------------------------------------------------
# URLs no request can go to (found by fuzzing webhook URLs)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://loadtester.test:99999/", "Port out of range 0-65535"),
        ("http://loadtester.test:-1/", "Port could not be cast to integer value as '-1'"),
        ("loadtester.test/hook", "expected http:// or https://"),
        ("http:///hook", "it names no host"),
        ("http://[::1/", "Invalid IPv6 URL"),
    ],
)
def test_a_webhook_url_no_request_can_go_to_is_a_field_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, reason: str
) -> None:
    # validate said "valid"; the controller failed the hook on every tick (and a port out of
    # range crashed the tick outright, tests/analysis/test_out_of_range_ports.py)
    text = CANARY + (f"    webhooks:\n      - name: load-test\n        url: '{url}'\n")
    code, err = _validate(_write(tmp_path, text), capsys)
    assert code == 2
    assert "spec.analysis.webhooks[0].url: must be an http(s) URL such as " in err, err
    assert reason in err


def test_a_url_error_shows_no_password_nor_query(tmp_path: Path) -> None:
    text = CANARY.replace(
        "  targetRef:",
        "  metricsServer: 'http://admin:s3cret@prom:99999/?token=t0k3n'\n  targetRef:",
    )
    with pytest.raises(SpecError) as caught:
        load_manifests([_write(tmp_path, text)])
    rendered = caught.value.render()
    assert "spec.metricsServer: must be an http(s) URL such as" in rendered
    assert "got 'http://prom:99999/'" in rendered
    assert "s3cret" not in rendered and "t0k3n" not in rendered
