-- Weather per location and hour, patients' home locations, and rejected weather
-- input (issue 9). Locations are kept to 0.01 degree (about 1 km), as the
-- simulators and most gridded weather services resolve them.

CREATE TABLE IF NOT EXISTS weather_hourly (
    lat           numeric(5, 2) NOT NULL CHECK (lat BETWEEN -90 AND 90),     -- degrees
    lon           numeric(6, 2) NOT NULL CHECK (lon BETWEEN -180 AND 180),   -- degrees
    hour          timestamptz NOT NULL,        -- start of the hour (UTC)
    temperature_c real,                        -- air temperature, degrees Celsius
    pressure_hpa  real,                        -- sea-level pressure, hPa
    humidity_pct  real,                        -- relative humidity, %
    source        text NOT NULL,               -- "open-meteo", "csv", "simulator"
    imported_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hour, lat, lon)
);

-- A patient's home: where their weather comes from when no GPS is consented or present.
CREATE TABLE IF NOT EXISTS patient_homes (
    patient_id bigint PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
    lat        double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon        double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Input lines an import could not use, kept with the reason (nothing is dropped silently).
CREATE TABLE IF NOT EXISTS weather_rejects (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,                 -- file name or importer
    line        integer NOT NULL,              -- 1-based line (CSV) or hour index (JSON)
    reason      text NOT NULL,
    raw         text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
