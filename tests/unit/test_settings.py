from __future__ import annotations

import pytest

from cidadao.errors import ConfigError
from cidadao.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CIDADAO_") or name in ("JSON_ENCODER", "COMPRESSION_LEVEL", "BATCH_SIZE", "DB_POOL_SIZE"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no .env file


def test_defaults_are_the_seed_values() -> None:
    s = load_settings()
    assert (s.json_encoder, s.compression_level, s.cache_strategy) == ("orjson", 11, "multi_tier")
    assert (s.agent_pool_size, s.db_pool_size, s.http2_enabled, s.batch_size) == (2, 50, True, 100)
    assert s.host == "127.0.0.1"
    assert s.database_url is None and s.redis_url is None


def test_seed_names_bare_and_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPRESSION_LEVEL", "5")
    monkeypatch.setenv("CIDADAO_BATCH_SIZE", "250")
    monkeypatch.setenv("HTTP2_ENABLED", "false")
    s = load_settings()
    assert (s.compression_level, s.batch_size, s.http2_enabled) == (5, 250, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [("COMPRESSION_LEVEL", "12"), ("DB_POOL_SIZE", "lots"), ("JSON_ENCODER", "pickle"),
     ("CIDADAO_DATABASE_URL", "mysql://x"), ("CIDADAO_REDIS_URL", "http://x"), ("CIDADAO_PORT", "0")],
)  # fmt: skip
def test_an_invalid_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value)


def test_invalid_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIDADAO_DATABASE_URL", "mysql://root:hunter2@db/x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_masked_hides_secrets_but_shows_where() -> None:
    s = Settings(database_url="postgresql://app:s3cret@db.example:5432/cidadao", portal_api_key="abc123")
    shown = s.masked()
    assert shown["CIDADAO_DATABASE_URL"] == "postgresql://app:***@db.example:5432/cidadao"
    assert shown["CIDADAO_PORTAL_API_KEY"] == "***"
    assert "s3cret" not in repr(shown) and "abc123" not in repr(shown)
    assert shown["COMPRESSION_LEVEL"] == 11
