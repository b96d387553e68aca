-- Counts every change to `sites`, so a gateway's site cache (src/site_cache.rs) can tell with
-- one single-row read whether anything it holds may be stale, instead of reading each cached
-- site again. Triggers, not the code that writes sites, bump it: `vakt site`, the HTTP API,
-- another node and a hand-written UPDATE all count. Keep in step with
-- ../postgres/0009_site_epoch.sql.
CREATE TABLE site_epoch (
    id  INTEGER PRIMARY KEY,
    n   BIGINT NOT NULL
);
INSERT INTO site_epoch (id, n) VALUES (1, 0);

CREATE TRIGGER site_epoch_insert AFTER INSERT ON sites
BEGIN
    UPDATE site_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER site_epoch_update AFTER UPDATE ON sites
BEGIN
    UPDATE site_epoch SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER site_epoch_delete AFTER DELETE ON sites
BEGIN
    UPDATE site_epoch SET n = n + 1 WHERE id = 1;
END;
