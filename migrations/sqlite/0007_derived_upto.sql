-- One mark for both tables derived from `events` by the writer: `site_events` and `zones` hold
-- every event with an id up to `upto`. While quiet the writer brings both up to date with each
-- commit; once busy both in one bulk transaction (src/site_copy.rs, src/zone_backlog.rs).
-- Readers add the events above the mark. Keep in step with ../postgres/0007_derived_upto.sql.
ALTER TABLE site_events_upto RENAME TO derived_upto;
