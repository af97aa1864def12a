"""Around a local Ray's start, without Ray: the token file only its owner reads, ports chosen when the default is
taken, an error when a port the operator set is taken."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from cidadao.errors import CidadaoError
from pipelines.ray_node import choose_port, port_free, secure_token_file


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_token_file_others_can_read_is_made_private(home: Path) -> None:
    token = home / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("a" * 64)
    token.chmod(0o644)  # as Ray writes it under the usual umask
    assert secure_token_file() == token
    assert _mode(token) == 0o600 and token.read_text() == "a" * 64
    assert secure_token_file() is None  # already private: left alone


def test_a_local_start_writes_the_token_private_from_the_first_byte(home: Path) -> None:
    token = home / ".ray" / "auth_token"
    assert secure_token_file(create=True) == token
    assert _mode(token) == 0o600
    assert len(token.read_text()) == 64 and int(token.read_text(), 16) > 0  # Ray's form: 32 random bytes in hex
    written = token.read_text()
    assert secure_token_file(create=True) is None and token.read_text() == written  # never replaced


def test_the_token_at_ray_auth_token_path_is_made_private_never_created(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = home / "elsewhere" / "token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    assert secure_token_file(create=True) is None and not token.exists()
    token.parent.mkdir()
    token.write_text("b" * 64)
    token.chmod(0o664)
    assert secure_token_file() == token and _mode(token) == 0o600


def test_no_token_file_is_touched_without_token_auth(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert secure_token_file(create=True) is None and not (home / ".ray").exists()
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "c" * 64)  # a token in the environment: no file at all
    assert secure_token_file(create=True) is None and not (home / ".ray").exists()


def test_a_free_port_is_kept_a_taken_default_replaced_a_taken_setting_refused() -> None:
    with socket.create_server(("0.0.0.0", 0)) as held:
        taken = int(held.getsockname()[1])
        assert not port_free(taken)
        port, note = choose_port(taken, explicit=False, what="the exporter", variable="CIDADAO_RAY_METRICS_PORT")
        assert port != taken and port_free(port)
        assert note == f"the exporter on port {port}: its default {taken} (CIDADAO_RAY_METRICS_PORT) is taken"
        refused = rf"port {taken} for the Ray dashboard \(CIDADAO_RAY_DASHBOARD_PORT\) is taken"
        with pytest.raises(CidadaoError, match=refused):
            choose_port(taken, explicit=True, what="the Ray dashboard", variable="CIDADAO_RAY_DASHBOARD_PORT")
    assert choose_port(taken, explicit=True, what="x", variable="X") == (taken, None)
