"""The one typed configuration of the runtime.

Every environment variable the runtime reads is a field here. The seed's names (``JSON_ENCODER``,
``COMPRESSION_LEVEL``, ``CACHE_STRATEGY``, ``AGENT_POOL_SIZE``, ``DB_POOL_SIZE``, ``HTTP2_ENABLED``,
``BATCH_SIZE``) are accepted as they are and also with the ``CIDADAO_`` prefix; everything else is
``CIDADAO_*``. An invalid value raises :class:`~cidadao.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cidadao.errors import ConfigError

__all__ = ["Settings", "get_settings", "load_settings", "mask_secret"]


def _seed(name: str) -> AliasChoices:
    """Accept a seed variable both bare and with the project prefix."""
    return AliasChoices(name, f"CIDADAO_{name}")


def _own(name: str) -> AliasChoices:
    return AliasChoices(f"CIDADAO_{name}")


class Settings(BaseSettings):
    """Effective settings, read once from the environment (and an optional ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, frozen=True
    )

    # --- the seed's performance settings -------------------------------------------------------
    json_encoder: Literal["orjson", "json"] = Field("orjson", validation_alias=_seed("JSON_ENCODER"))
    compression_level: int = Field(11, ge=0, le=11, validation_alias=_seed("COMPRESSION_LEVEL"))
    cache_strategy: Literal["multi_tier", "redis", "memory", "none"] = Field(
        "multi_tier", validation_alias=_seed("CACHE_STRATEGY")
    )
    # agents of each kind started (pre-warmed) with the runtime; the seed said 10, but every agent is a Ray
    # worker process (~150 MiB resident) and four kinds of ten is 40 processes on a laptop's cores
    agent_pool_size: int = Field(2, ge=0, le=1000, validation_alias=_seed("AGENT_POOL_SIZE"))
    db_pool_size: int = Field(50, ge=1, le=1000, validation_alias=_seed("DB_POOL_SIZE"))
    http2_enabled: bool = Field(True, validation_alias=_seed("HTTP2_ENABLED"))
    batch_size: int = Field(100, ge=1, le=100_000, validation_alias=_seed("BATCH_SIZE"))

    # --- stores --------------------------------------------------------------------------------
    database_url: SecretStr | None = Field(None, validation_alias=_own("DATABASE_URL"))
    read_replica_url: SecretStr | None = Field(None, validation_alias=_own("READ_REPLICA_URL"))
    redis_url: SecretStr | None = Field(None, validation_alias=_own("REDIS_URL"))
    data_home: Path = Field(Path.home() / ".cidadao", validation_alias=_own("DATA_HOME"))
    db_pool_min_size: int = Field(1, ge=0, le=1000, validation_alias=_own("DB_POOL_MIN_SIZE"))
    db_command_timeout: float = Field(60.0, gt=0, validation_alias=_own("DB_COMMAND_TIMEOUT"))

    # --- cache (the seed's tiers: L1 5 min / 1,000 entries, L2 1 h / 10,000 entries) ------------------
    # L1, each process's memory (a hit costs no call at all)
    cache_l1_ttl: float = Field(300.0, gt=0, validation_alias=_own("CACHE_L1_TTL"))
    cache_l1_entries: int = Field(1000, ge=0, validation_alias=_own("CACHE_L1_ENTRIES"))
    cache_l1_bytes: int = Field(64 * 1024 * 1024, ge=0, validation_alias=_own("CACHE_L1_BYTES"))
    # L1's shared part: the node's cache actor, entries in the Ray object store (an actor call per hit: on
    # one node with a local Redis it costs more than it saves — docs/benchmarks.md; false turns it off)
    cache_node_tier: bool = Field(True, validation_alias=_own("CACHE_NODE_TIER"))
    cache_node_entries: int = Field(10_000, ge=1, validation_alias=_own("CACHE_NODE_ENTRIES"))
    cache_node_bytes: int = Field(256 * 1024 * 1024, ge=1024, validation_alias=_own("CACHE_NODE_BYTES"))
    cache_l2_ttl: float = Field(3600.0, gt=0, validation_alias=_own("CACHE_L2_TTL"))
    cache_l2_entries: int = Field(10_000, ge=1, validation_alias=_own("CACHE_L2_ENTRIES"))
    # XFetch: recompute early with probability growing as expiry nears (beta 0 turns it off)
    cache_xfetch_beta: float = Field(1.0, ge=0, validation_alias=_own("CACHE_XFETCH_BETA"))
    # an expired entry may be served this long while one caller refreshes it
    cache_stale_ttl: float = Field(60.0, ge=0, validation_alias=_own("CACHE_STALE_TTL"))
    cache_lock_ttl: float = Field(30.0, gt=0, validation_alias=_own("CACHE_LOCK_TTL"))
    cache_follower_wait: float = Field(10.0, gt=0, validation_alias=_own("CACHE_FOLLOWER_WAIT"))

    # --- ingestion -----------------------------------------------------------------------------
    ingest_batch_rows: int = Field(20_000, ge=1, le=1_000_000, validation_alias=_own("INGEST_BATCH_ROWS"))
    max_contract_value: float = Field(1e11, gt=0, validation_alias=_own("MAX_CONTRACT_VALUE"))

    # --- investigations ------------------------------------------------------------------------
    # below this many contracts an investigation runs in-process: the crossover measured on 2 cores by
    # `cidadao bench pipeline` (Ray loses at 500k from Postgres, wins at 1M); lower it on bigger machines
    investigate_inline_rows: int = Field(750_000, ge=0, validation_alias=_own("INVESTIGATE_INLINE_ROWS"))
    # an investigator renews its claim every third of the lease; a crashed one's work is retried once it runs out
    investigation_lease: float = Field(30.0, ge=1.0, le=3600.0, validation_alias=_own("INVESTIGATION_LEASE"))
    investigation_max_attempts: int = Field(3, ge=1, le=100, validation_alias=_own("INVESTIGATION_MAX_ATTEMPTS"))

    # the pool scales each kind between these with its load (CIDADAO_AGENT_POOL_SIZE must lie between them)
    agent_pool_min: int = Field(1, ge=0, le=1000, validation_alias=_own("AGENT_POOL_MIN"))
    agent_pool_max: int = Field(4, ge=1, le=1000, validation_alias=_own("AGENT_POOL_MAX"))
    agent_acquire_timeout: float = Field(30.0, gt=0, validation_alias=_own("AGENT_ACQUIRE_TIMEOUT"))
    agent_recycle_after_tasks: int = Field(1000, ge=1, validation_alias=_own("AGENT_RECYCLE_AFTER_TASKS"))
    agent_max_lifetime: float = Field(3600.0, gt=0, validation_alias=_own("AGENT_MAX_LIFETIME"))
    agent_max_rss_mb: float = Field(2048.0, gt=0, validation_alias=_own("AGENT_MAX_RSS_MB"))
    agent_health_period: float = Field(5.0, gt=0, validation_alias=_own("AGENT_HEALTH_PERIOD"))

    # --- the HTTP API (Ray Serve; `cidadao api` runs the same app under uvicorn) ----------------------
    # read endpoints answer without a key (citizens, journalists); false: every request needs one
    api_public_reads: bool = Field(True, validation_alias=_own("API_PUBLIC_READS"))
    api_key_cache_ttl: float = Field(10.0, ge=0, validation_alias=_own("API_KEY_CACHE_TTL"))
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024, validation_alias=_own("API_MAX_BODY_BYTES"))
    api_request_timeout: float = Field(30.0, gt=0, validation_alias=_own("API_REQUEST_TIMEOUT"))
    # requests a replica works on at once (arrival to first byte); more are answered 503 at once
    api_max_in_flight: int = Field(256, ge=1, validation_alias=_own("API_MAX_IN_FLIGHT"))
    api_default_page_size: int = Field(50, ge=1, validation_alias=_own("API_DEFAULT_PAGE_SIZE"))
    api_max_page_size: int = Field(500, ge=1, le=10_000, validation_alias=_own("API_MAX_PAGE_SIZE"))
    api_max_result_flags: int = Field(5000, ge=1, validation_alias=_own("API_MAX_RESULT_FLAGS"))
    api_max_date_range_days: int = Field(3660, ge=1, validation_alias=_own("API_MAX_DATE_RANGE_DAYS"))
    # token buckets in Redis: requests a minute and the burst, per client address and per API key (0: off)
    rate_limit_per_minute: float = Field(600.0, ge=0, validation_alias=_own("RATE_LIMIT_PER_MINUTE"))
    rate_limit_burst: int = Field(100, ge=1, validation_alias=_own("RATE_LIMIT_BURST"))
    rate_limit_key_per_minute: float = Field(6000.0, ge=0, validation_alias=_own("RATE_LIMIT_KEY_PER_MINUTE"))
    rate_limit_key_burst: int = Field(1000, ge=1, validation_alias=_own("RATE_LIMIT_KEY_BURST"))
    # proxies whose X-Forwarded-For names the client (comma-separated addresses; Serve's proxy is local)
    forwarded_allow_ips: str = Field("127.0.0.1", validation_alias=_own("FORWARDED_ALLOW_IPS"))
    cors_origins: str = Field("", validation_alias=_own("CORS_ORIGINS"))  # comma-separated; empty: no CORS
    # brotli quality for bodies compressed per request (cached bodies use COMPRESSION_LEVEL, once)
    compression_dynamic_level: int = Field(5, ge=0, le=11, validation_alias=_own("COMPRESSION_DYNAMIC_LEVEL"))
    compression_min_size: int = Field(1024, ge=0, validation_alias=_own("COMPRESSION_MIN_SIZE"))
    # live progress: a WebSocket sends progress in batches of up to this many events or this window
    ws_batch_size: int = Field(20, ge=1, le=10_000, validation_alias=_own("WS_BATCH_SIZE"))
    ws_batch_window: float = Field(0.25, gt=0, le=60, validation_alias=_own("WS_BATCH_WINDOW"))
    sse_heartbeat: float = Field(5.0, gt=0, validation_alias=_own("SSE_HEARTBEAT"))
    graphql_max_depth: int = Field(10, ge=1, le=100, validation_alias=_own("GRAPHQL_MAX_DEPTH"))
    graphql_max_complexity: int = Field(1000, ge=1, validation_alias=_own("GRAPHQL_MAX_COMPLEXITY"))
    # Ray Serve: the ingress deployment's replicas and their backpressure
    serve_min_replicas: int = Field(1, ge=1, le=100, validation_alias=_own("SERVE_MIN_REPLICAS"))
    serve_max_replicas: int = Field(2, ge=1, le=100, validation_alias=_own("SERVE_MAX_REPLICAS"))
    serve_max_ongoing_requests: int = Field(256, ge=1, validation_alias=_own("SERVE_MAX_ONGOING_REQUESTS"))
    serve_target_ongoing_requests: float = Field(64.0, gt=0, validation_alias=_own("SERVE_TARGET_ONGOING_REQUESTS"))
    serve_max_queued_requests: int = Field(512, ge=-1, validation_alias=_own("SERVE_MAX_QUEUED_REQUESTS"))
    serve_replica_cpus: float = Field(0.5, gt=0, le=64, validation_alias=_own("SERVE_REPLICA_CPUS"))
    # `cidadao up` serves the API (false: the agents only)
    api_enabled: bool = Field(True, validation_alias=_own("API_ENABLED"))
    # Serve's front: its Python proxy actor, or HAProxy with direct ingress to the replicas (deployments/serving.py)
    serve_proxy: Literal["python", "haproxy"] = Field("haproxy", validation_alias=_own("SERVE_PROXY"))
    serve_haproxy_threads: int = Field(1, ge=1, le=64, validation_alias=_own("SERVE_HAPROXY_THREADS"))
    # Serve's fallback proxy behind HAProxy (0: a port free at start)
    serve_fallback_port: int = Field(0, ge=0, le=65535, validation_alias=_own("SERVE_FALLBACK_PORT"))

    # --- live sources --------------------------------------------------------------------------
    portal_api_key: SecretStr | None = Field(None, validation_alias=_own("PORTAL_API_KEY"))
    portal_base_url: str = Field(
        "https://api.portaldatransparencia.gov.br/api-de-dados", validation_alias=_own("PORTAL_BASE_URL")
    )
    pncp_base_url: str = Field("https://pncp.gov.br/api/consulta/v1", validation_alias=_own("PNCP_BASE_URL"))
    fetch_requests_per_minute: float = Field(80.0, gt=0, validation_alias=_own("FETCH_REQUESTS_PER_MINUTE"))
    fetch_timeout: float = Field(30.0, gt=0, validation_alias=_own("FETCH_TIMEOUT"))
    fetch_max_retries: int = Field(6, ge=0, le=50, validation_alias=_own("FETCH_MAX_RETRIES"))
    http_max_connections: int = Field(100, ge=1, validation_alias=_own("HTTP_MAX_CONNECTIONS"))
    http_max_keepalive: int = Field(20, ge=0, validation_alias=_own("HTTP_MAX_KEEPALIVE"))
    http_keepalive_expiry: float = Field(300.0, gt=0, validation_alias=_own("HTTP_KEEPALIVE_EXPIRY"))

    # --- runtime -------------------------------------------------------------------------------
    # keys given by the environment besides those `cidadao keys` keeps in Postgres: comma-separated
    # `scope+scope=cid_<id>_<secret>` (a bare key is admin); for bootstrapping and for deployments that keep
    # secrets in a secret store
    api_keys: SecretStr | None = Field(None, validation_alias=_own("API_KEYS"))
    ray_address: str | None = Field(None, validation_alias=_own("RAY_ADDRESS"))
    # `cidadao up` starts a local Ray with its dashboard on 127.0.0.1 (token auth on, Ray's default)
    ray_dashboard: bool = Field(True, validation_alias=_own("RAY_DASHBOARD"))
    ray_dashboard_port: int = Field(8265, ge=1, le=65535, validation_alias=_own("RAY_DASHBOARD_PORT"))
    # where Ray's exporter serves the actors' metrics (a local cluster's; a joined cluster keeps its own)
    ray_metrics_port: int = Field(9465, ge=1, le=65535, validation_alias=_own("RAY_METRICS_PORT"))
    # `cidadao up`'s own /metrics, /healthz and /status on HOST (0: off)
    metrics_port: int = Field(9464, ge=0, le=65535, validation_alias=_own("METRICS_PORT"))
    # an OpenAI-compatible chat completions URL; unset: reports are written from templates
    llm_endpoint: str | None = Field(None, validation_alias=_own("LLM_ENDPOINT"))
    llm_model: str = Field("default", min_length=1, validation_alias=_own("LLM_MODEL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_own("LLM_API_KEY"))
    llm_timeout: float = Field(20.0, gt=0, validation_alias=_own("LLM_TIMEOUT"))
    host: str = Field("127.0.0.1", validation_alias=_own("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_own("PORT"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias=_own("LOG_LEVEL"))

    @field_validator("database_url", "read_replica_url")
    @classmethod
    def _postgres_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if not self.agent_pool_min <= self.agent_pool_size <= self.agent_pool_max:
            raise ValueError(
                f"agent pool sizes must satisfy AGENT_POOL_MIN ({self.agent_pool_min}) <= AGENT_POOL_SIZE "
                f"({self.agent_pool_size}) <= AGENT_POOL_MAX ({self.agent_pool_max})"
            )
        return self

    @model_validator(mode="after")
    def _serve_replicas(self) -> Settings:
        if self.serve_min_replicas > self.serve_max_replicas:
            raise ValueError(
                f"CIDADAO_SERVE_MIN_REPLICAS ({self.serve_min_replicas}) must not exceed CIDADAO_SERVE_MAX_REPLICAS "
                f"({self.serve_max_replicas})"
            )
        return self

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            from cidadao.web.keys import parse_static_keys

            parse_static_keys(v.get_secret_value())  # raises ValueError naming the entry (never the secret)
        return v

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("data_home")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    def env_name(self, field: str) -> str:
        """The environment variable that sets ``field`` (its first accepted name)."""
        alias = type(self).model_fields[field].validation_alias
        assert isinstance(alias, AliasChoices)
        first = alias.choices[0]
        return first if isinstance(first, str) else field

    def masked(self) -> dict[str, Any]:
        """Effective settings keyed by variable name, secrets masked (for ``cidadao config``)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = mask_secret(value.get_secret_value())
            elif isinstance(value, Path):
                value = str(value)
            out[self.env_name(name)] = value
        return out


def mask_secret(secret: str) -> str:
    """Hide a secret; for a URL keep scheme, user, host and database so the user sees what is used."""
    if "://" in secret:
        scheme, rest = secret.split("://", 1)
        if "@" in rest:
            cred, host = rest.rsplit("@", 1)
            user = cred.split(":", 1)[0]
            has_password = ":" in cred and cred.split(":", 1)[1] != ""
            return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
        return secret
    return "***" if secret else ""


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    if info is None:  # the error is keyed by the variable name: find its field
        info = next((f for f in Settings.model_fields.values() if _names(f.validation_alias, field)), None)
    return info is not None and "SecretStr" in str(info.annotation)


def _names(alias: object, name: str) -> bool:
    return isinstance(alias, AliasChoices) and name in alias.choices


def load_settings(**overrides: Any) -> Settings:
    """Read settings now; invalid values raise :class:`ConfigError` naming each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = field
            if field in Settings.model_fields:
                alias = Settings.model_fields[field].validation_alias
                if isinstance(alias, AliasChoices):
                    name = " or ".join(str(c) for c in alias.choices)
            shown = err.get("input")
            if _is_secret(field) and isinstance(shown, str):
                shown = mask_secret(shown)
            if not err["loc"]:  # a rule across several variables: its message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            problems.append(f"{name}: {err['msg']} (got {shown!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
