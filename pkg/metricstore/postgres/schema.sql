-- The metrics schema of cloud-api's database: its own tables and its own migration history
-- (metrics.schema_migrations), apart from the object store's.

-- migration: 1
-- Counter names, interned: samples carry small ids instead of text.
CREATE TABLE metrics.series (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    measurement text    NOT NULL,
    plugin      text    NOT NULL,
    name        text    NOT NULL,
    gauge       boolean NOT NULL,
    UNIQUE (measurement, plugin, name)
);

-- The last scrape of each Fluent Bit (pipeline and pod): the previous values a new scrape's
-- increases are taken from, and the time that makes a repeated scrape a duplicate.
CREATE TABLE metrics.last (
    namespace  text        NOT NULL,
    pipeline   text        NOT NULL,
    pod        text        NOT NULL,
    ts         timestamptz NOT NULL,
    start_time timestamptz,
    series     integer[]   NOT NULL,
    vals       bigint[]    NOT NULL,
    PRIMARY KEY (namespace, pipeline, pod)
);

-- One row per scrape: each counter's increase since the pod's previous scrape (gauges: their
-- value), in partitions of an hour that retention drops whole.
CREATE TABLE metrics.samples (
    namespace     text        NOT NULL,
    core_instance text        NOT NULL,
    pipeline      text        NOT NULL,
    pod           text        NOT NULL,
    ts            timestamptz NOT NULL,
    series        integer[]   NOT NULL,
    deltas        bigint[]    NOT NULL,
    PRIMARY KEY (namespace, pipeline, pod, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX samples_pipeline ON metrics.samples (namespace, pipeline, ts);
CREATE INDEX samples_core_instance ON metrics.samples (namespace, core_instance, ts);

-- Hours rolled up from samples (summed over pods; gauges as sum and count), in partitions of a
-- day.
CREATE TABLE metrics.hourly (
    namespace     text        NOT NULL,
    core_instance text        NOT NULL,
    pipeline      text        NOT NULL,
    hour          timestamptz NOT NULL,
    series        integer[]   NOT NULL,
    sums          bigint[]    NOT NULL,
    counts        bigint[]    NOT NULL,
    PRIMARY KEY (namespace, pipeline, core_instance, hour)
) PARTITION BY RANGE (hour);
CREATE INDEX hourly_core_instance ON metrics.hourly (namespace, core_instance, hour);

-- The hours already rolled up.
CREATE TABLE metrics.rollups (
    hour timestamptz PRIMARY KEY
);
