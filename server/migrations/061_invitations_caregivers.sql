-- Issue 10: one-time invitation codes (a patient's own account, a caregiver), the
-- caregivers a patient lets follow them, and the caregivers' own delivery settings.

-- A code is shown once and stored as its SHA-256; it expires and is used at most once.
CREATE TABLE IF NOT EXISTS invitations (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('patient', 'caregiver')),
    patient_id   bigint NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    code_hash    bytea NOT NULL UNIQUE,
    created_by   bigint NOT NULL REFERENCES users(id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_by      bigint REFERENCES users(id),
    cancelled_at timestamptz,
    -- caregiver invitations: what the caregiver will see and be told
    label        text NOT NULL DEFAULT '',
    scopes       text[] NOT NULL DEFAULT '{}' CHECK (scopes <@ '{status,alerts,trends}'::text[]),
    notify_level text NOT NULL DEFAULT 'none' CHECK (notify_level IN ('none', 'red', 'yellow'))
);
CREATE INDEX IF NOT EXISTS invitations_patient_idx ON invitations (patient_id, id DESC);

-- A caregiver following a patient: what they see (scopes) and which alerts reach them
-- (notify_level: none, red = red only, yellow = yellow and red). Revoked rows are kept.
CREATE TABLE IF NOT EXISTS caregivers (
    id            bigserial PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label         text NOT NULL DEFAULT '',
    scopes        text[] NOT NULL CHECK (scopes <@ '{status,alerts,trends}'::text[]),
    notify_level  text NOT NULL CHECK (notify_level IN ('none', 'red', 'yellow')),
    invitation_id bigint REFERENCES invitations(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoked_by    bigint REFERENCES users(id)
);
CREATE UNIQUE INDEX IF NOT EXISTS caregivers_one_active_idx ON caregivers (patient_id, user_id)
    WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS caregivers_user_idx ON caregivers (user_id) WHERE revoked_at IS NULL;

-- A caregiver's own settings: quiet hours in their time zone (deliveries wait until they end).
-- Their e-mail address is an alert_channels row with user_id = the caregiver.
CREATE TABLE IF NOT EXISTS caregiver_settings (
    user_id     bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    quiet_start time,
    quiet_end   time,
    timezone    text NOT NULL DEFAULT 'UTC',
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
