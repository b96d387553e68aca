-- Counts every change to `sites`, so a gateway's site cache (src/site_cache.rs) can tell with
-- one single-row read whether anything it holds may be stale, instead of reading each cached
-- site again. Triggers, not the code that writes sites, bump it: `vakt site`, the HTTP API,
-- another node and a hand-written UPDATE all count. Row triggers, so a statement that changes
-- no row (an upsert of a site stored as given) moves nothing; TRUNCATE has only a statement
-- trigger. Keep in step with ../sqlite/0009_site_epoch.sql.
CREATE TABLE site_epoch (
    id  INTEGER PRIMARY KEY,
    n   BIGINT NOT NULL
);
INSERT INTO site_epoch (id, n) VALUES (1, 0);

CREATE FUNCTION vakt_site_epoch_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE site_epoch SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER site_epoch_bump AFTER INSERT OR UPDATE OR DELETE ON sites
FOR EACH ROW EXECUTE FUNCTION vakt_site_epoch_bump();

CREATE TRIGGER site_epoch_truncate AFTER TRUNCATE ON sites
FOR EACH STATEMENT EXECUTE FUNCTION vakt_site_epoch_bump();
