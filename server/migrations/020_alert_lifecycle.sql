-- Issue 7: personalised threshold versions, escalation contacts, delivery channels,
-- and the alert history (notes, escalation steps, deliveries). Numbered 020+.

-- Every threshold set ever proposed or approved for a patient. Approved rows are
-- versions 1, 2, ... in approval order; the newest approved one is in force.
CREATE TABLE threshold_versions (
    id          bigserial PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES patients(id),
    status      text NOT NULL CHECK (status IN ('proposed', 'approved', 'superseded', 'rejected')),
    version     integer,                         -- set on approval; NULL while proposed
    limits      jsonb NOT NULL,                  -- {"hr@rest": {"yellow_low": ..}, ...}
    baseline    jsonb NOT NULL DEFAULT '{}',     -- the statistics a proposal came from
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint REFERENCES users(id),     -- NULL: proposed by the server
    approved_at timestamptz,
    approved_by bigint REFERENCES users(id),
    reason      text NOT NULL DEFAULT '',
    pushed_at   timestamptz,                     -- when the phone's retained config was published
    UNIQUE (patient_id, version)
);
CREATE INDEX threshold_versions_patient_idx ON threshold_versions (patient_id, id DESC);

-- Who is called for a patient's red alert: rank 1 first, rank 2 on escalation.
ALTER TABLE care_assignments ADD COLUMN contact_rank smallint NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN on_call boolean NOT NULL DEFAULT false;

-- Configured channels: a webhook URL or an e-mail address, for one user or for all.
CREATE TABLE alert_channels (
    id        bigserial PRIMARY KEY,
    kind      text NOT NULL CHECK (kind IN ('webhook', 'email')),
    target    text NOT NULL,                      -- URL or e-mail address
    user_id   bigint REFERENCES users(id) ON DELETE CASCADE,  -- NULL: every red alert
    min_level text NOT NULL DEFAULT 'red' CHECK (min_level IN ('yellow', 'red')),
    enabled   boolean NOT NULL DEFAULT true,
    UNIQUE (kind, target, user_id)
);

ALTER TABLE alerts ADD COLUMN threshold_version integer;       -- NULL: default limits
ALTER TABLE alerts ADD COLUMN escalation_step smallint NOT NULL DEFAULT 0;

-- Everything that happened to an alert, in order: notes, escalation steps, deliveries.
CREATE TABLE alert_history (
    id       bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts(id),
    at       timestamptz NOT NULL DEFAULT now(),
    kind     text NOT NULL,                       -- note, escalate_contact, promote, no_signal, delivered, failed
    user_id  bigint REFERENCES users(id),
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, id);

-- One delivery per (alert, channel), whatever the step that reached it: N loops never send twice.
CREATE TABLE alert_deliveries (
    alert_id   bigint NOT NULL REFERENCES alerts(id),
    step       smallint NOT NULL,
    channel_id bigint NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts   smallint NOT NULL DEFAULT 0,
    error      text NOT NULL DEFAULT '',
    PRIMARY KEY (alert_id, channel_id)
);
