-- The alarm queue and site supervision (issue #5). Keep in step with ../postgres/.

-- An alarm: what needs an operator. Opened by an alarm-class event, joined by the site's later
-- events within the join window, worked new -> taken -> resolved.
CREATE TABLE alarms (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account         TEXT NOT NULL,
    state           TEXT NOT NULL,          -- 'new' | 'taken' | 'resolved'
    priority        INTEGER NOT NULL,       -- 1 = first (fire, hold-up, duress, panic) … 7
    category        TEXT NOT NULL,          -- 'fire' | 'hold_up' | 'duress' | 'panic' | …
    opened_at       BIGINT NOT NULL,        -- unix microseconds (received_at of the event)
    code            TEXT,                   -- the event that set the priority
    zone            TEXT,
    partition       TEXT,
    meaning         TEXT,
    frame_ref       TEXT NOT NULL,
    seq_in_frame    INTEGER NOT NULL,
    cancelled_at    BIGINT,                 -- cancelled or aborted at the panel …
    cancelled_user  TEXT,                   -- … by this user
    restored_at     BIGINT,                 -- supervision alarms: traffic resumed
    taken_at        BIGINT,
    taken_by        TEXT,
    resolved_at     BIGINT,
    resolved_by     TEXT,
    outcome         TEXT,                   -- 'dispatched' | 'false_alarm' | 'revoked_by_customer' | 'test' | 'technical'
    note            TEXT
);
-- The open alarms of a site (newest by id), and the queue in priority and age order.
CREATE INDEX alarms_open ON alarms (account, id) WHERE state <> 'resolved';
CREATE INDEX alarms_queue ON alarms (priority, opened_at, id) WHERE state <> 'resolved';

-- Bumped whenever an alarm opens, is raised or is resolved: a writer that remembers the open
-- alarms of the sites it has seen reads this one row per commit and forgets them when it moved.
CREATE TABLE alarm_epoch (
    id  INTEGER PRIMARY KEY,
    n   BIGINT NOT NULL
);
INSERT INTO alarm_epoch (id, n) VALUES (1, 0);

-- Every step of every alarm, timestamped and attributed; also what /api/stream follows.
CREATE TABLE alarm_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id    BIGINT NOT NULL,
    at          BIGINT NOT NULL,            -- unix microseconds
    change      TEXT NOT NULL,              -- 'opened' | 'escalated' | 'cancelled_at_panel' | 'restored' | 'taken' | 'resolved'
    actor       TEXT,                       -- operator, or 'panel' / 'vakt'
    detail      TEXT
);
CREATE INDEX alarm_changes_alarm ON alarm_changes (alarm_id, id);

-- When each site was last heard from, and its supervision deadline: due sites are found
-- through the deadline index, so a check costs time in proportion to the sites that are due.
CREATE TABLE supervision (
    account       TEXT PRIMARY KEY,
    interval_secs INTEGER,                  -- NULL: not supervised (last_seen is still kept)
    last_seen     BIGINT,                   -- unix microseconds; NULL: never
    deadline      BIGINT,                   -- last message (or start) + interval; NULL: none
    failed_at     BIGINT,                   -- communication failure raised; NULL while fine
    restored_at   BIGINT
);
CREATE INDEX supervision_due ON supervision (deadline)
    WHERE failed_at IS NULL AND deadline IS NOT NULL;

INSERT INTO supervision (account, interval_secs, deadline)
SELECT account, supervision_secs,
       CASE WHEN supervision_secs IS NULL THEN NULL
            ELSE CAST(strftime('%s', 'now') AS INTEGER) * 1000000 + supervision_secs * 1000000 END
FROM sites;
