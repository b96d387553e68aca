-- A site's events found without an index on events (account, id). Keep in step with
-- ../postgres/0006_site_events.sql, where the same names are a view over that index.
--
-- That index took a random B-tree leaf per stored event (1,000 sites: no two events of a
-- commit share one), written whole to the WAL with every commit: a third of the writer's
-- SQLite work in a burst. The writer now copies (account, id) here itself: with each commit
-- while it is quiet, in bulk (thousands of events, so a leaf takes many entries per write)
-- once it is busy (src/site_copy.rs). Events above `site_events_upto.upto` are not yet
-- copied; queries read them from `events` by id range (about a second's worth at most).
CREATE TABLE site_events (
    account     TEXT NOT NULL,
    id          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;

CREATE TABLE site_events_upto (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto BIGINT NOT NULL                -- every event with an id up to this is in site_events
);

INSERT INTO site_events (account, id, received_at)
    SELECT account, id, received_at FROM events ORDER BY account, id;
INSERT INTO site_events_upto (one, upto) VALUES (1, COALESCE((SELECT MAX(id) FROM events), 0));
DROP INDEX events_account_id;
