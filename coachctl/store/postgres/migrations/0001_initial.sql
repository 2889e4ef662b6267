-- coachctl schema 1: sessions as JSONB with their counted decision rows beside them.
-- Every table is prefixed coachctl_ so the store can share a database with other things.

-- One row per applied migration; the schema version is the highest.
CREATE TABLE coachctl_schema (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- moved_to: where `store migrate` moved this store (every write is then refused).
CREATE TABLE coachctl_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE coachctl_sessions (
    id          text PRIMARY KEY,
    workflow_id text NOT NULL,
    status      text NOT NULL,
    mode        text NOT NULL,
    created_at  text NOT NULL DEFAULT '',
    updated_at  text NOT NULL DEFAULT '',
    accepted    integer NOT NULL DEFAULT 0,
    suggestions integer NOT NULL DEFAULT 0,
    folds       integer NOT NULL DEFAULT 0,  -- decisions its workflow's pack must have folded
    body        jsonb NOT NULL,
    summary     jsonb NOT NULL
);
CREATE INDEX coachctl_sessions_workflow ON coachctl_sessions (workflow_id, id);
-- The sessions that teach a workflow's correction pack (few): its staleness check and rebuild.
CREATE INDEX coachctl_sessions_teaching ON coachctl_sessions (workflow_id, id, folds)
    WHERE folds > 0;

-- Every workflow some session belongs to, with its session count (kept by the insert of a
-- session, in the same transaction; sessions are never deleted): `stats` reads a count
-- per workflow here instead of counting 100,000 rows.
CREATE TABLE coachctl_workflows (
    workflow_id text PRIMARY KEY,
    sessions    bigint NOT NULL DEFAULT 0
);

-- One row per counted decision (what the metrics read); `seq` is its order of record.
CREATE TABLE coachctl_decisions (
    session_id  text NOT NULL REFERENCES coachctl_sessions (id) ON DELETE CASCADE,
    pos         integer NOT NULL,
    seq         bigint NOT NULL,
    workflow_id text NOT NULL,
    step_id     text NOT NULL,
    suggestion  text,
    scope       text NOT NULL DEFAULT '',
    kind        text NOT NULL,
    decided_at  text NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, pos)
);
-- A step window: the latest N decisions on one exact suggestion and scope.
CREATE INDEX coachctl_decisions_window
    ON coachctl_decisions (workflow_id, step_id, scope, suggestion, seq DESC);
CREATE INDEX coachctl_decisions_seq ON coachctl_decisions (seq DESC);

-- `next_seq`: greater than every seq handed out or recorded, whatever the clocks say.
CREATE SEQUENCE coachctl_decision_seq;

CREATE TABLE coachctl_levels (
    workflow_id text NOT NULL,
    step_id     text NOT NULL,
    scope       text NOT NULL,
    level       text NOT NULL,
    PRIMARY KEY (workflow_id, step_id, scope)
);

-- Derived correction packs (rebuilt from sessions when missing or stale: a pack whose
-- `folded` record differs from the sessions' `folds`) ...
CREATE TABLE coachctl_packs (
    workflow_id text PRIMARY KEY,
    body        jsonb NOT NULL
);

-- ... and the choices people made by hand (adopt, drop, import): truth, never rebuilt.
CREATE TABLE coachctl_hand_choices (
    workflow_id text PRIMARY KEY,
    body        jsonb NOT NULL
);

-- The event log. Appends are serialised (a transaction-level advisory lock taken just
-- before the insert, held to commit), so ids are in commit order: a follower reading
-- `id > last` never skips an event that committed late.
CREATE TABLE coachctl_events (
    id          bigserial PRIMARY KEY,
    session_id  text,
    workflow_id text,
    body        jsonb NOT NULL
);
