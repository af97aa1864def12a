"""The command as a user meets it: the main job on a fresh data home, configuration, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIDADAO_")}
    env["CIDADAO_DATA_HOME"] = str(tmp_path / "home")
    return env


def test_up_with_demo_on_a_fresh_data_home(fresh_env: dict[str, str]) -> None:
    try:
        result = run_cli("up", "--demo", "3000", "--detach", env=fresh_env)
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "migrated: 0001_initial" in out
        assert "demo: contracts:" in out and "postgres (embedded)" in out and "redis    (embedded)" in out
        stored = int(out.split("rows: ")[1].split("contracts ")[1].split(",")[0])
        assert 2900 < stored < 3000  # the dirty rows were rejected on purpose
        again = run_cli("up", "--demo", "3000", "--detach", env=fresh_env)
        assert "already holds" in again.stdout and "migrated" not in again.stdout
    finally:
        assert "stopped" in run_cli("down", env=fresh_env).stdout


def _running(env: dict[str, str]) -> set[str]:
    status = run_cli("status", env=env).stdout
    return {line.split(":")[0] for line in status.splitlines() if line.endswith(": running")}


def test_one_shot_commands_stop_the_servers_they_started_and_leave_the_others(fresh_env: dict[str, str]) -> None:
    """A command that ends stops the embedded servers it started; servers it found running (``up --detach``)
    stay up until ``cidadao down``."""
    try:
        listed = run_cli("keys", "list", "--json", env=fresh_env)
        assert listed.returncode == 0 and orjson.loads(listed.stdout) == {"keys": []}, listed.stderr
        assert _running(fresh_env) == set()  # it started both, and stopped both
        ran = run_cli("investigate", "--orgao", "26000", env=fresh_env)  # through Ray, then refused: still stopped
        assert ran.returncode == 2 and "the database holds none" in ran.stderr and _running(fresh_env) == set()

        assert run_cli("up", "--detach", env=fresh_env).returncode == 0
        assert _running(fresh_env) == {"postgres", "redis"}
        assert run_cli("keys", "list", env=fresh_env).returncode == 0
        assert _running(fresh_env) == {"postgres", "redis"}  # found running: not its to stop
    finally:
        run_cli("down", env=fresh_env)
    assert _running(fresh_env) == set()


def test_config_masks_secrets(fresh_env: dict[str, str]) -> None:
    env = dict(
        fresh_env,
        CIDADAO_DATABASE_URL="postgresql://app:s3cret@db:5432/x",
        CIDADAO_PORTAL_API_KEY="k3y",
        BATCH_SIZE="7",
    )
    result = run_cli("config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    shown = orjson.loads(result.stdout)
    assert shown["CIDADAO_DATABASE_URL"] == "postgresql://app:***@db:5432/x"
    assert shown["CIDADAO_PORTAL_API_KEY"] == "***" and shown["BATCH_SIZE"] == 7
    assert "s3cret" not in result.stdout and "k3y" not in result.stdout
    table = run_cli("config", env=env)
    assert "COMPRESSION_LEVEL" in table.stdout and "s3cret" not in table.stdout


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        (("config",), {"COMPRESSION_LEVEL": "99"}, "COMPRESSION_LEVEL"),
        (("ingest", "/nonexistent/file.jsonl"), {}, "no such file"),
        (("ingest", "x", "--kind", "people"), {}, "--kind must be"),
        (("ingest", "x", "--format", "xml"), {}, "--format must be"),
        (("generate", "--contracts", "10", "--out", "d", "--format", "xml"), {}, "--format must be"),
        (("fetch", "portal", "--orgao", "abc", "--from", "2024-01-01", "--to", "2024-02-01", "--out", "o"), {},
         "5-digit SIAFI"),
        (("fetch", "pncp", "--from", "yesterday", "--to", "2024-02-01", "--out", "o"), {}, "--from"),
        (("generate", "--contracts", "10", "--out", "/proc/cidadao"), {}, "cannot write /proc/cidadao"),
        (("fetch", "pncp", "--from", "2024-03-01", "--to", "2024-02-01", "--out", "o"), {}, "is after --to"),
        (("fetch", "portal", "--orgao", "26000", "--from", "2024-01-01", "--to", "2024-02-01", "--out", "o"), {},
         "CIDADAO_PORTAL_API_KEY"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_clear_line(
    fresh_env: dict[str, str], tmp_path: Path, args: tuple[str, ...], env_extra: dict[str, str], message: str
) -> None:
    result = run_cli(*args, env={**fresh_env, **env_extra}, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_of_a_file_that_is_not_data(fresh_env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(256))
    result = run_cli("ingest", str(junk), "--json", env=fresh_env)
    assert result.returncode == 2 and result.stdout == ""
    assert "binary data" in result.stderr and str(junk) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
