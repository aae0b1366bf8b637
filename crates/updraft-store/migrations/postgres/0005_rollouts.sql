-- Rollouts: a candidate (a Capgo bundle version or an Expo publish group) offered to a percentage of a channel's
-- devices while the rest keep the stable one. One row per (app, channel): starting a new rollout replaces a halted
-- or completed one, never an active one. The id is also the salt of the devices' buckets, so it never changes.
CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    channel TEXT NOT NULL,
    -- active, halted or completed
    state TEXT NOT NULL,
    percent_bps BIGINT NOT NULL,
    -- capgo_bundle or expo_group
    candidate_kind TEXT NOT NULL,
    candidate TEXT NOT NULL,
    -- builtin, capgo_bundle or expo_previous
    stable_kind TEXT NOT NULL,
    stable TEXT,
    -- Expo: the "platform runtime_version" pairs the candidate covers, one per line; empty for Capgo.
    covers TEXT NOT NULL,
    -- A fraction from 0 to 1, as text (columns are text, integers and booleans only).
    max_failure_rate TEXT NOT NULL,
    min_devices BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    health_since TEXT NOT NULL,
    completed_at TEXT,
    -- The last halt (kept after a resume, for the record).
    halted_at TEXT,
    halted_by TEXT,
    halt_automatic BOOLEAN NOT NULL,
    halt_reason TEXT,
    halt_devices BIGINT,
    halt_failures BIGINT,
    -- The last state change: start, set, halt, resume or complete; by whom, when, why.
    changed_action TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    change_reason TEXT NOT NULL,
    UNIQUE (app_id, channel)
);
