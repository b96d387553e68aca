-- Site codes, contact persons, operators and the audit log (issue #6). Keep in step with
-- ../sqlite/.

-- A site's two codes, as argon2id PHC strings only: never the code itself.
CREATE TABLE site_codes (
    account         TEXT PRIMARY KEY,
    revoke_hash     TEXT,                   -- NULL: not set
    main_hash       TEXT,                   -- NULL: not set
    changed_at      BIGINT NOT NULL,        -- unix microseconds; verifications before it lapse
    counted_from    BIGINT NOT NULL DEFAULT 0, -- wrong codes before this (a right code, a lock) no longer count
    locked_until    BIGINT                  -- verification refused until then
);

-- The call list: who is called, in which order, and whether they may be told about the system.
CREATE TABLE contacts (
    account           TEXT NOT NULL,
    position          INTEGER NOT NULL,     -- call order, 1 first
    name              TEXT NOT NULL,
    phones            TEXT NOT NULL,        -- JSON array of strings
    may_receive_info  BOOLEAN NOT NULL,
    note              TEXT,
    PRIMARY KEY (account, position)
);

-- Who uses the API. The bearer token is shown once; only its SHA-256 is kept.
CREATE TABLE operators (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,              -- 'operator' | 'admin'
    token_hash  TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the token
    created_at  BIGINT NOT NULL
);

-- Every verification, code use and change, attributed. Never a code or a token.
CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,            -- unix microseconds
    actor       TEXT NOT NULL,              -- operator name, or 'cli' / 'config'
    action      TEXT NOT NULL,              -- 'verify' | 'revoke' | 'take' | 'resolve' | 'contacts' | 'codes' | …
    account     TEXT,
    alarm_id    BIGINT,
    outcome     TEXT NOT NULL,              -- 'revoke' | 'main' | 'wrong' | 'locked' | 'ok' | 'refused' …
    detail      TEXT
);
CREATE INDEX audit_account ON audit (account, at);
CREATE INDEX audit_actor ON audit (actor, account, at);

-- Wrong codes given while an alarm was open (an intruder, or duress, may be on the phone).
ALTER TABLE alarms ADD COLUMN wrong_codes INTEGER NOT NULL DEFAULT 0;
