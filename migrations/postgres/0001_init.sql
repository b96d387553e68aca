-- vakt schema, PostgreSQL. Keep in step with ../sqlite/0001_init.sql: same tables, columns and
-- indexes; only the types differ, and the dedup table exists only here.

-- One row per DC-09 account.
CREATE TABLE sites (
    account             TEXT PRIMARY KEY,   -- upper-case hex
    name                TEXT NOT NULL DEFAULT '',
    prefix              TEXT,
    receiver            TEXT,
    key_text            TEXT,               -- AES key as configured (needed to decrypt)
    key_form            TEXT,               -- 'hex' | 'ascii'
    encryption_required BOOLEAN NOT NULL DEFAULT FALSE,
    quirks              TEXT NOT NULL DEFAULT '',
    supervision_secs    INTEGER,
    updated_at          BIGINT NOT NULL     -- unix microseconds
);

-- One row per event; a frame with several events has several rows (same frame_ref), a frame
-- stored without events (DUH) has one row with class 'unprocessed'.
CREATE TABLE events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    frame_ref       TEXT NOT NULL,          -- node-unique id of the frame the event came in
    received_at     BIGINT NOT NULL,        -- unix microseconds, when the frame was read
    listener        TEXT NOT NULL,
    transport       TEXT NOT NULL,          -- 'tcp' | 'udp' | 'serial'
    peer            TEXT NOT NULL,
    account         TEXT NOT NULL,
    token           TEXT NOT NULL,
    encrypted       BOOLEAN NOT NULL,
    sequence        TEXT NOT NULL,
    receiver        TEXT,
    prefix          TEXT,
    outcome         TEXT NOT NULL,          -- 'ack' | 'duh'
    reason          TEXT,                   -- why a DUH frame could not be processed
    panel_time      BIGINT,                 -- DC-09 timestamp, unix seconds
    data            TEXT,                   -- data block, decrypted
    xdata           TEXT,                   -- x-data blocks as JSON
    seq_in_frame    INTEGER NOT NULL,
    scheme          TEXT,
    code            TEXT,
    qualifier       TEXT,
    class           TEXT NOT NULL,
    kind            TEXT,
    meaning         TEXT,
    mapped_code     TEXT,
    partition       TEXT,
    address         TEXT,
    address_kind    TEXT,
    zone            TEXT,
    user_no         TEXT,
    text            TEXT,
    event_time      TEXT,                   -- SIA ti/da modifiers
    dedup           BYTEA,                   -- frame identity (16 bytes), see src/dedup.rs
    raw             BYTEA NOT NULL
);
CREATE INDEX events_account_id ON events (account, id);
CREATE INDEX events_received_at ON events (received_at);

-- Frame identities claimed within the duplicate window, shared by every node on this
-- database, so that a retransmission reaching another node is still stored once. (SQLite,
-- one node, keeps them in memory and rebuilds them from events.dedup at start-up.)
CREATE TABLE dedup (
    key     BYTEA PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX dedup_seen_at ON dedup (seen_at);
