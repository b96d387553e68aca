-- Automation outputs: how far each has been delivered (the id of the last event the automation
-- acknowledged), and which vakt node is feeding it (a lease, so that several nodes on one
-- database never feed the same output twice).
CREATE TABLE outputs (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    owner       TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,  -- unix microseconds
    updated_at  BIGINT NOT NULL             -- unix microseconds
);
