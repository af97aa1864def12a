"""The exception tree of the runtime.

Every error the runtime raises on purpose derives from :class:`CidadaoError`, so callers can catch
the whole family or one branch::

    CidadaoError
    ├── ConfigError            an environment variable holds an invalid value (names the variable)
    ├── CommandError           a command (start an investigation...) or a query is invalid (names the field)
    ├── StoreError             Postgres or Redis could not be started, reached or migrated
    │   └── MigrationError     a migration failed or the recorded history disagrees with the files
    ├── InputFormatError       a file is not what it claims to be (one clear line, the file named)
    ├── IngestError            a batch could not be stored (the batch was rolled back)
    ├── FetchError             a live source kept failing after bounded retries
    ├── EmptyScope             an investigation's scope holds no contracts (retrying cannot help)
    └── PartitionsFailed       parallel work failed on some partitions after retries (names them)

Row-level problems are *not* exceptions: a bad row becomes a :class:`cidadao.contracts.validation.Rejection`
that is reported while the good rows load.
"""

from __future__ import annotations

__all__ = [
    "CidadaoError",
    "CommandError",
    "ConfigError",
    "EmptyScope",
    "FetchError",
    "IngestError",
    "InputFormatError",
    "MigrationError",
    "PartitionsFailed",
    "StoreError",
]


class CidadaoError(Exception):
    """Base of every error raised by the runtime on purpose."""


class ConfigError(CidadaoError):
    """An environment variable (or settings field) holds an invalid value."""


class CommandError(CidadaoError):
    """A command was refused before anything changed: ``field`` names what was wrong (``"orgao"``, ``"paths.1"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreError(CidadaoError):
    """A store (Postgres, Redis) could not be started, reached or used."""


class MigrationError(StoreError):
    """A schema migration failed, or the applied history disagrees with the migration files."""


class InputFormatError(CidadaoError):
    """An input file is not in the format it claims (or was detected) to be."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class IngestError(CidadaoError):
    """A batch could not be stored; the database is as it was before that batch."""


class FetchError(CidadaoError):
    """A live source (Portal da Transparência, PNCP) kept failing after bounded retries."""


class PartitionsFailed(CidadaoError):
    """Some partitions of a parallel run still failed after their retries: no partial answer is returned.

    ``failed`` maps each failed item's index (its position in the input) to the error, ``labels`` names the
    partitions those items held when the caller said (organ and year, for the red-flag sweep).
    """

    def __init__(self, failed: dict[int, str], total: int, labels: dict[int, str] | None = None) -> None:
        self.failed = dict(sorted(failed.items()))
        self.total = total
        self.labels = labels or {}
        named = [self.labels.get(i, f"item {i}") for i in self.failed]
        shown = "; ".join(named[:10]) + (f"; and {len(named) - 10} more" if len(named) > 10 else "")
        first = next(iter(self.failed.values()), "")
        super().__init__(f"{len(self.failed)} of {total} partitions failed after retries ({shown}): {first}")


class EmptyScope(CidadaoError):
    """An investigation's scope (organ, year) holds no contracts."""
