"""Clients generated from the example project's OpenAPI schema with default options:
openapi-python-client and openapi-typescript. A small client script for each
(tests/clients/client.py and client.ts: list sessions, book a seat, read an error's code)
type-checks against what they generate, and request fields the server fills in stay optional
while answer fields are typed as present.

Deselected unless ``-m clients`` (CI runs it once, beside the suite: the schema is the same on
every database). The tools come from ``make install``: openapi-python-client and mypy (the
dependency group ``clients``), openapi-typescript and TypeScript (``npm ci --prefix
tests/clients``). Without them the test is skipped, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "tests" / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
PACKAGE = "example_lms_live_class_booking_api_client"  # from the example project's TITLE

pytestmark = [pytest.mark.slow, pytest.mark.clients]

# Request fields with a server default: optional in every generated request type.
SERVER_DEFAULTS = {
    "BookingCreateRequest": ["seats_reserved", "student_note"],
    "SeriesCreateRequest": ["interval", "days_of_week", "accept_partial", "student_note"],
    "SeriesExtendRequest": ["accept_partial"],
    "WaitlistAcceptRequest": ["student_note"],
    "ReasonRequest": ["reason"],
    "RescheduleRequest": ["reason"],
    "ApproveRequest": ["teacher_note"],
    "CalendarTokenCreateRequest": ["name"],
    "SessionRunRequest": ["interval", "days_of_week", "description"],
    "BusySourceCreateRequest": ["name", "username", "enabled"],
}
# Answers of model serializers: every field present (none typed as maybe absent), but a
# session's meeting details, which only those who manage it get.
COMPLETE_ANSWERS = [
    "Session",
    "Booking",
    "Policy",
    "Availability",
    "WaitlistEntry",
    "Series",
    "BusySource",
]
LEFT_OUT_FOR_SOME = {"Session": {"meeting_link", "meeting_id", "meeting_passcode"}}


def _tools() -> dict[str, str]:
    """The generators and checkers; skips (fails under ``CI=true``) when one is missing."""
    bin_dir = Path(sys.executable).parent
    found = {
        "openapi-python-client": shutil.which("openapi-python-client", path=str(bin_dir))
        or shutil.which("openapi-python-client"),
        "node": shutil.which("node"),
        "openapi-typescript": str(NODE_BIN / "openapi-typescript"),
        "tsc": str(NODE_BIN / "tsc"),
    }
    missing = [name for name, path in found.items() if not path or not Path(path).exists()]
    try:
        import mypy  # noqa: F401
    except ImportError:
        missing.append("mypy")
    if missing:
        message = (
            f"missing {', '.join(missing)}: install the dependency group `clients` and run "
            "`npm ci --prefix tests/clients` (make install does both)"
        )
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI is set and the generated-client test needs: {message}", pytrace=False)
        pytest.skip(message)
    return {name: str(path) for name, path in found.items()}


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{args}\n{output}"
    return output


def _response_components(schema: dict[str, Any]) -> set[str]:
    """The components an answer uses, directly or nested."""
    components = schema["components"]["schemas"]

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
            return found.union(*(refs(v) for k, v in node.items() if k != "$ref"))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    pending = set().union(
        *(refs(op.get("responses", {})) for ops in schema["paths"].values() for op in ops.values())
    )
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        seen.add(name)
        pending |= refs(components[name]) - seen
    return seen


# What the generated Python package declares: per model class, its fields (JSON names) and
# whether each has a default (optional) and may be Unset (maybe absent).
INTROSPECT = textwrap.dedent(
    """
    import json, sys
    import attrs
    from {package} import models

    out = {{}}
    for name in models.__all__:
        cls = getattr(models, name)
        if not attrs.has(cls):
            continue
        out[name] = {{
            f.name: {{"optional": f.default is not attrs.NOTHING, "unset": "Unset" in str(f.type)}}
            for f in attrs.fields(cls)
            if f.name != "additional_properties"
        }}
    json.dump(out, sys.stdout)
    """
)


def test_generated_clients_type_check_and_keep_server_defaults_optional(tmp_path: Path) -> None:
    tools = _tools()
    unset = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
        # openapi-python-client formats its output with ruff from the same environment.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }

    # The schema, as a host serves it.
    schema_file = tmp_path / "schema.yaml"
    _run(
        [
            *(sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"),
            *("--file", str(schema_file)),
        ],
        ROOT / "example_project",
        env,
    )
    schema = yaml.safe_load(schema_file.read_text())
    components = schema["components"]["schemas"]
    for name, fields in SERVER_DEFAULTS.items():
        assert set(fields) <= set(components[name]["properties"]), name
        assert not set(fields) & set(components[name].get("required", [])), name
    for name in COMPLETE_ANSWERS:
        left_out = LEFT_OUT_FOR_SOME.get(name, set())
        required = set(components[name]["required"])
        assert required == set(components[name]["properties"]) - left_out, name

    # openapi-python-client, default options.
    generated = _run(
        [
            *(tools["openapi-python-client"], "generate", "--path", str(schema_file)),
            *("--output-path", str(tmp_path / "py")),
        ],
        tmp_path,
        env,
    )
    assert "Warning" not in generated, generated
    declared = json.loads(
        _run(
            [sys.executable, "-c", INTROSPECT.format(package=PACKAGE)],
            tmp_path,
            {**env, "PYTHONPATH": str(tmp_path / "py")},
        )
    )
    for name, fields in SERVER_DEFAULTS.items():
        for field in fields:
            assert declared[name][field]["optional"], f"{name}.{field} is required"
    for name in _response_components(schema) & set(declared):
        required = set(components[name].get("required", []))
        maybe_absent = {f for f, kind in declared[name].items() if kind["unset"]}
        assert not required & maybe_absent, f"{name}: {sorted(required & maybe_absent)}"
    for name in COMPLETE_ANSWERS:
        maybe_absent = {f for f, kind in declared[name].items() if kind["unset"]}
        assert maybe_absent == LEFT_OUT_FOR_SOME.get(name, set()), name

    # openapi-typescript, default options.
    _run(
        [
            *(tools["node"], tools["openapi-typescript"], str(schema_file)),
            *("--output", str(tmp_path / "schema.d.ts")),
        ],
        tmp_path,
    )

    # The client scripts type-check against what was generated.
    for script in ("client.py", "client.ts"):
        shutil.copy(CLIENTS / script, tmp_path / script)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    _run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini", "client.py"],
        tmp_path,
        {**env, "MYPYPATH": str(tmp_path / "py")},
    )
    _run(
        [
            *(tools["node"], tools["tsc"], "--noEmit", "--strict", "--target", "es2022"),
            *("--module", "es2022", "--moduleResolution", "bundler", "--lib", "es2022,dom"),
            "client.ts",
        ],
        tmp_path,
    )
