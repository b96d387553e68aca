-- A site's events: the same names as ../sqlite/0006_site_events.sql, whose queries run
-- unchanged here. There `site_events` is a table the writer fills in bulk, because SQLite's
-- WAL takes a whole B-tree page per changed index leaf per commit; PostgreSQL's WAL logs the
-- index entry, so events keep their (account, id) index and `site_events` is a view over it,
-- never behind (`upto` is the largest id there can be).
CREATE VIEW site_events AS SELECT account, id, received_at FROM events;

CREATE TABLE site_events_upto (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto BIGINT NOT NULL
);
INSERT INTO site_events_upto (one, upto) VALUES (1, 9223372036854775807);
