-- pisces schema v1: plain PostgreSQL. Time-series tables (summaries, events, strips)
-- keep their time column in every unique key so they can become TimescaleDB
-- hypertables later without a rewrite.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('clinician', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,            -- sha256 of the bearer token; the token itself is never stored
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE patients (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    device_id    text NOT NULL UNIQUE,
    last_data_at timestamptz,                -- end of the newest summary window stored
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE care_assignments (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    patient_id bigint NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, patient_id)
);
CREATE INDEX care_assignments_patient_idx ON care_assignments (patient_id);

-- The idempotency key of the whole chain: one row per (device, seq) ever stored.
CREATE TABLE uplink_messages (
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);

CREATE TABLE summaries (
    patient_id bigint NOT NULL REFERENCES patients(id),
    device_id  text NOT NULL,
    seq        bigint NOT NULL,
    idx        integer NOT NULL,             -- position of the window in its message
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL,
    beats      integer NOT NULL,
    hr_mean    real, hr_min real, hr_max real,  -- bpm
    rr_mean    real, sdnn real, rmssd real,     -- ms
    flags      text[] NOT NULL DEFAULT '{}',
    resp_rate  real,                            -- breaths/min
    activity   text NOT NULL,
    intensity  real,                            -- g
    quality    real NOT NULL,                   -- 0..1
    battery    smallint,                        -- %
    lat        double precision, lon double precision,
    UNIQUE (device_id, seq, idx, start_at)
);
CREATE INDEX summaries_patient_time_idx ON summaries (patient_id, start_at);

CREATE TABLE events (
    patient_id bigint NOT NULL REFERENCES patients(id),
    device_id  text NOT NULL,
    seq        bigint NOT NULL,
    type       text NOT NULL,
    at         timestamptz NOT NULL,
    period     text,
    tags       text[] NOT NULL DEFAULT '{}',
    severity   smallint,
    note       text NOT NULL DEFAULT '',
    lat        double precision, lon double precision,
    UNIQUE (device_id, seq, at)
);
CREATE INDEX events_patient_time_idx ON events (patient_id, at);

CREATE TABLE symptom_periods (
    id         bigserial PRIMARY KEY,
    patient_id bigint NOT NULL REFERENCES patients(id),
    period     text NOT NULL,                -- the phone's id of the period
    started_at timestamptz,                  -- NULL while only the stop has arrived
    ended_at   timestamptz,                  -- NULL while the period is open
    tags       text[] NOT NULL DEFAULT '{}',
    severity   smallint,
    note       text NOT NULL DEFAULT '',
    UNIQUE (patient_id, period)
);
CREATE INDEX symptom_periods_time_idx ON symptom_periods (started_at);

CREATE TABLE strips (
    patient_id bigint NOT NULL REFERENCES patients(id),
    device_id  text NOT NULL,
    seq        bigint NOT NULL,
    start_at   timestamptz NOT NULL,
    fs         real NOT NULL,                -- Hz
    reason     text NOT NULL,
    ref_seq    bigint,
    n_samples  integer NOT NULL,
    samples    bytea NOT NULL,               -- int16 little-endian, µV
    UNIQUE (device_id, seq, start_at)
);
CREATE INDEX strips_patient_time_idx ON strips (patient_id, start_at);

CREATE TABLE device_status (
    device_id  text PRIMARY KEY,
    patient_id bigint NOT NULL REFERENCES patients(id),
    seq        bigint NOT NULL,
    at         timestamptz NOT NULL,
    online     boolean NOT NULL,
    sensor     text NOT NULL,
    battery    smallint,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients(id),
    level         text NOT NULL CHECK (level IN ('yellow', 'red')),
    parameter     text NOT NULL,
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at     timestamptz NOT NULL,
    escalated_at  timestamptz,
    closed_at     timestamptz,
    trigger       jsonb NOT NULL,
    acked_by      bigint REFERENCES users(id),
    acked_at      timestamptz,
    ack_note      text,
    resolved_by   bigint REFERENCES users(id),
    resolve_note  text
);
-- At most one active alert per patient and parameter: the rule engine updates it in place.
CREATE UNIQUE INDEX alerts_one_active_idx ON alerts (patient_id, parameter) WHERE state <> 'resolved';
CREATE INDEX alerts_state_idx ON alerts (state, opened_at DESC);

CREATE TABLE rule_state (
    patient_id bigint PRIMARY KEY REFERENCES patients(id),
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_time_idx ON dead_letters (received_at DESC);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint NOT NULL REFERENCES users(id),
    action     text NOT NULL,                -- e.g. "read:summaries", "ack:alert"
    patient_id bigint REFERENCES patients(id),
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_patient_idx ON audit_log (patient_id, at);
