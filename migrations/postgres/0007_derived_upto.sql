-- The name of ../sqlite/0007_derived_upto.sql. Here nothing is derived in bulk: `site_events`
-- is a view and the writer upserts `zones` with each commit, so `upto` stays the largest id.
ALTER TABLE site_events_upto RENAME TO derived_upto;
