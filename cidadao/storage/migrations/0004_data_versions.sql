-- A version per table that the red-flag rules read as reference data, bumped by every statement that changes
-- it (COPY included), so caches of derived data (peer price statistics, sanction and registry indexes) know
-- when they are stale at the cost of one indexed read.

CREATE TABLE data_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);

INSERT INTO data_versions (name) VALUES ('contracts'), ('sanctions'), ('suppliers');

CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END
$$;

CREATE TRIGGER contracts_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER sanctions_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sanctions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER suppliers_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON suppliers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
