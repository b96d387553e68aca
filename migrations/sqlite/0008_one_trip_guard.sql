-- PostgreSQL only: the guard of the writer's one-trip commit (../postgres/0008_one_trip_guard.sql).
-- SQLite has one writer and commits in one thread of this process; nothing to create. Kept so
-- that both directories number their migrations alike.
SELECT 1;
