-- A read model built only from events (investigation.completed): flags found per organ, signing month and
-- flag. `cidadao events replay` rebuilds it from the stream; it must come out the same.

CREATE TABLE projection_flags_by_organ_month (
    orgao_codigo text NOT NULL,
    month        text NOT NULL,          -- 'YYYY-MM' of the contracts' signing dates
    flag         text NOT NULL,
    n            bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (orgao_codigo, month, flag)
);
