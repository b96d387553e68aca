-- The writer's one-trip commit (src/store/pg_batch.rs): one statement, outside any explicit
-- transaction, that takes the writers' lock, claims the batch's identities and inserts its
-- events and zones, assuming every frame new and the writer's cache of open alarms current.
-- Its final SELECT calls this guard; when either assumption is wrong the guard raises, the
-- statement's implicit transaction rolls back whole, and the writer commits the batch step by
-- step instead. SQLSTATE VK001 tells that refusal from a real failure. Keep the number in
-- step with ../sqlite/0008_one_trip_guard.sql (which has nothing to create).
CREATE FUNCTION vakt_one_trip_guard(all_claimed BOOLEAN, epoch_held BOOLEAN) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF all_claimed AND epoch_held THEN
        RETURN TRUE;
    END IF;
    RAISE EXCEPTION 'one-trip commit refused: % claimed elsewhere, alarm epoch %',
        CASE WHEN all_claimed THEN 'no frame' ELSE 'a frame' END,
        CASE WHEN epoch_held THEN 'held' ELSE 'moved' END
        USING ERRCODE = 'VK001';
END
$$;
