-- Site state, updated in the transaction that stores the events that change it, so every
-- node sharing the database shows the same state. Each row names the event that set it
-- (frame_ref + seq_in_frame, see events).

-- Arming per site and partition ('' when the panel gives none).
CREATE TABLE partitions (
    account      TEXT NOT NULL,
    partition    TEXT NOT NULL,
    arming       TEXT NOT NULL,          -- 'disarmed' | 'armed_away' | 'armed_stay'
    user_no      TEXT,                   -- who armed or disarmed
    changed_at   BIGINT NOT NULL,        -- unix microseconds (received_at of the event)
    code         TEXT,
    frame_ref    TEXT NOT NULL,
    seq_in_frame INTEGER NOT NULL,
    PRIMARY KEY (account, partition)
);

-- The last reported state of each zone.
CREATE TABLE zones (
    account      TEXT NOT NULL,
    zone         TEXT NOT NULL,
    partition    TEXT NOT NULL,
    state        TEXT NOT NULL,          -- 'normal' | 'alarm' | 'trouble' | 'tamper' | 'bypassed'
    since        BIGINT NOT NULL,        -- unix microseconds
    code         TEXT,
    frame_ref    TEXT NOT NULL,
    seq_in_frame INTEGER NOT NULL,
    PRIMARY KEY (account, zone)
);

-- Not-ready episodes the panel reported: fail to arm, exit error, forced arming, forced point.
CREATE TABLE not_ready (
    id BIGSERIAL PRIMARY KEY,
    account      TEXT NOT NULL,
    partition    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    zone         TEXT,
    at           BIGINT NOT NULL,        -- unix microseconds
    code         TEXT,
    frame_ref    TEXT NOT NULL,
    seq_in_frame INTEGER NOT NULL
);
CREATE INDEX not_ready_account_id ON not_ready (account, id);
