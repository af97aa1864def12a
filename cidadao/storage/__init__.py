"""Storage: the embedded servers, Postgres (pool, migrations, COPY) and Redis."""
