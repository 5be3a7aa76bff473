#include "server/storage/sqlite/schema.hpp"

#include "server/storage/sqlite/sqlite_database.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

#include <array>

namespace adms::server {
namespace {

// The schema, one migration per version: migrations[i] takes user_version i to i + 1. Append
// only; never edit a migration that has shipped.
constexpr std::array<std::string_view, sqlite_database::schema_version> migrations{
    R"sql(
CREATE TABLE device (
    serial_number          TEXT PRIMARY KEY NOT NULL,
    first_seen_ms          INTEGER NOT NULL,
    last_seen_ms           INTEGER NOT NULL,
    remote_address         TEXT NOT NULL DEFAULT '',
    push_version           TEXT NOT NULL DEFAULT '',
    language               TEXT NOT NULL DEFAULT '',
    approved               INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    alias                  TEXT UNIQUE,
    zone_override          TEXT,
    dialect                TEXT NOT NULL DEFAULT '',
    attlog_stamp           TEXT,
    operlog_stamp          TEXT,
    attphoto_stamp         TEXT,
    full_upload_requested  INTEGER NOT NULL DEFAULT 0 CHECK (full_upload_requested IN (0, 1)),
    info                   TEXT NOT NULL DEFAULT '',
    info_at_ms             INTEGER,
    time_sync_sent_ms      INTEGER,
    time_sync_confirmed_ms INTEGER,
    time_sync_error        TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE device_option (
    serial_number TEXT NOT NULL REFERENCES device (serial_number) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial_number, key)
) STRICT, WITHOUT ROWID;

-- Data tables have no foreign key to device: what an unknown device uploads is kept too.
CREATE TABLE punch (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    pin            TEXT NOT NULL,
    local_time     TEXT NOT NULL,
    utc_s          INTEGER,
    status         INTEGER NOT NULL,
    verify         INTEGER NOT NULL,
    work_code      TEXT NOT NULL,
    sequence       INTEGER,
    raw_line       TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    quarantined    INTEGER NOT NULL CHECK (quarantined IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX punch_identity ON punch (serial_number, pin, local_time, status, verify);
CREATE INDEX punch_by_device ON punch (serial_number, id);

CREATE TABLE rejected_line (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    table_name     TEXT NOT NULL,
    line_number    INTEGER NOT NULL,
    text           TEXT NOT NULL,
    reason         TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX rejected_line_identity ON rejected_line (serial_number, table_name, text);

CREATE TABLE operlog_line (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    tag            TEXT NOT NULL,
    raw            TEXT NOT NULL,
    pin            TEXT,
    oplog_code     INTEGER,
    oplog_operator TEXT,
    oplog_time     TEXT,
    oplog_objects  TEXT, -- each object followed by a TAB, so [] and [""] differ
    received_at_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX operlog_line_identity ON operlog_line (serial_number, raw);

CREATE TABLE device_user (
    serial_number TEXT NOT NULL,
    pin           TEXT NOT NULL,
    name          TEXT NOT NULL,
    privilege     INTEGER,
    password      TEXT NOT NULL,
    card          TEXT NOT NULL,
    grp           TEXT NOT NULL,
    time_zones    TEXT NOT NULL,
    verify        INTEGER,
    vice_card     TEXT NOT NULL,
    raw           TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial_number, pin)
) STRICT, WITHOUT ROWID;

CREATE TABLE table_body (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    table_name     TEXT NOT NULL,
    body           BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE photo (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    bytes          BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX photo_identity ON photo (serial_number, file_name);

-- AUTOINCREMENT: an id is never reused, so a late result can never match a newer command.
CREATE TABLE command (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    text           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'done', 'failed', 'expired',
                                                  'unsendable')),
    created_at_ms  INTEGER NOT NULL,
    sent_at_ms     INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    result_code    INTEGER,
    result_command TEXT NOT NULL DEFAULT '',
    result_content TEXT NOT NULL DEFAULT '',
    result_info    TEXT NOT NULL DEFAULT '',
    result_at_ms   INTEGER
) STRICT;
CREATE INDEX command_by_device ON command (serial_number, state, id);

CREATE TABLE command_result (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    command_id     TEXT NOT NULL,
    return_code    INTEGER NOT NULL,
    command        TEXT NOT NULL,
    info           TEXT NOT NULL,
    content        TEXT NOT NULL,
    match          TEXT NOT NULL CHECK (match IN ('matched', 'duplicate', 'unmatched')),
    received_at_ms INTEGER NOT NULL
) STRICT;
)sql",
    R"sql(
-- Per-device settings made through the admin API; NULL: the config file decides.
ALTER TABLE device ADD COLUMN time_dialect_override TEXT
    CHECK (time_dialect_override IN ('att', 'att-singular'));
ALTER TABLE device ADD COLUMN sync_at_minutes INTEGER CHECK (sync_at_minutes BETWEEN 0 AND 1439);
ALTER TABLE device ADD COLUMN sync_interval_minutes INTEGER CHECK (sync_interval_minutes >= 0);

-- query_punches by PIN (one employee across devices) in id order, without a table scan.
CREATE INDEX punch_by_pin ON punch (pin, id);
)sql",
    R"sql(
-- The drift watch's history of each device's estimated clock offset.
CREATE TABLE clock_offset (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number  TEXT NOT NULL,
    measured_at_ms INTEGER NOT NULL,
    offset_ms      INTEGER NOT NULL,
    uncertainty_ms INTEGER NOT NULL CHECK (uncertainty_ms >= 0),
    source         TEXT NOT NULL CHECK (source IN ('sync', 'punches'))
) STRICT;
CREATE INDEX clock_offset_by_device ON clock_offset (serial_number, id);
CREATE INDEX clock_offset_by_age ON clock_offset (serial_number, measured_at_ms);
)sql",
    R"sql(
-- The event outbox (events some webhook endpoint wants, written in the transaction of the data
-- they announce), the deliveries that fan it out to endpoints, and their attempt log.
CREATE TABLE outbox_event (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    lane          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    body          TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_endpoint (
    name            TEXT PRIMARY KEY NOT NULL,
    definition      TEXT NOT NULL,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL CHECK (source IN ('config', 'api')),
    created_at_ms   INTEGER NOT NULL
) STRICT;

-- state: 0 pending, 1 delivered, 2 failed (parked). lane copies the event's, for the index.
CREATE TABLE webhook_delivery (
    endpoint        TEXT NOT NULL REFERENCES webhook_endpoint (name) ON DELETE CASCADE,
    seq             INTEGER NOT NULL REFERENCES outbox_event (seq),
    lane            TEXT NOT NULL,
    state           INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at_ms INTEGER,
    PRIMARY KEY (endpoint, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_delivery_by_lane ON webhook_delivery (endpoint, state, lane, seq);
CREATE INDEX webhook_delivery_by_state ON webhook_delivery (endpoint, state, seq);
CREATE INDEX webhook_delivery_by_event ON webhook_delivery (seq);

CREATE TABLE webhook_attempt (
    endpoint    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    response    TEXT NOT NULL,
    PRIMARY KEY (endpoint, seq, number),
    FOREIGN KEY (endpoint, seq) REFERENCES webhook_delivery (endpoint, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
)sql",
    R"sql(
-- Scheduled payroll exports: per [exports.<name>], the last day the schedule wrote (the schedule
-- resumes after it) and the latest file written, scheduled or on demand. Days are YYYY-MM-DD.
CREATE TABLE export_state (
    name               TEXT PRIMARY KEY NOT NULL,
    last_completed_day TEXT CHECK (last_completed_day GLOB
                                   '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    last_run_day       TEXT NOT NULL CHECK (last_run_day GLOB
                                            '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    last_run_file      TEXT NOT NULL,
    last_run_rows      INTEGER NOT NULL CHECK (last_run_rows >= 0),
    last_run_bytes     INTEGER NOT NULL CHECK (last_run_bytes >= 0),
    last_run_at_ms     INTEGER NOT NULL,
    last_run_scheduled INTEGER NOT NULL CHECK (last_run_scheduled IN (0, 1))
) STRICT, WITHOUT ROWID;
)sql",
    R"sql(
-- The outbox's hourly prune reads the rows it deletes, oldest first, through these.
CREATE INDEX webhook_delivery_by_age ON webhook_delivery (state, delivered_at_ms);
CREATE INDEX outbox_event_by_age ON outbox_event (created_at_ms);
)sql",
    R"sql(
-- The people directory (issue 17): areas, persons and the areas they belong to, each device's
-- area, and biometric templates kept per algorithm version.
CREATE TABLE area (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE person (
    pin           TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    card          TEXT NOT NULL,
    privilege     INTEGER NOT NULL,
    password      TEXT,
    verify        INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'left')),
    source        TEXT NOT NULL CHECK (source IN ('api', 'csv', 'ldap', 'device')),
    external_id   TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE person_area (
    pin  TEXT NOT NULL REFERENCES person (pin) ON DELETE CASCADE,
    area TEXT NOT NULL REFERENCES area (code) ON DELETE CASCADE,
    PRIMARY KEY (pin, area)
) STRICT, WITHOUT ROWID;
CREATE INDEX person_area_by_area ON person_area (area, pin);

-- Keyed by PIN, not by person row: a template enrolled on a device before its person is in the
-- directory is kept for when they are.
CREATE TABLE person_template (
    pin            TEXT NOT NULL,
    type           INTEGER NOT NULL,
    no             INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    major          INTEGER NOT NULL,
    minor          INTEGER NOT NULL,
    format         INTEGER NOT NULL,
    valid          INTEGER NOT NULL,
    duress         INTEGER NOT NULL CHECK (duress IN (0, 1)),
    data           TEXT NOT NULL,
    face_prefix    INTEGER NOT NULL CHECK (face_prefix IN (0, 1)),
    sha256         TEXT NOT NULL,
    source_sn      TEXT NOT NULL,
    captured_at_ms INTEGER NOT NULL,
    PRIMARY KEY (pin, type, no, idx, major, minor, format)
) STRICT, WITHOUT ROWID;

ALTER TABLE device ADD COLUMN area TEXT REFERENCES area (code);
CREATE INDEX device_by_area ON device (area) WHERE area IS NOT NULL;

-- Provisioning: the latest command planned per (device, PIN, kind, key), whose state is its
-- command's; and the templates each device holds (uploaded, or acknowledged when sent).
CREATE TABLE provision_item (
    serial_number TEXT NOT NULL,
    pin           TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'biometric', 'photo', 'deletion')),
    key           TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    command_id    INTEGER NOT NULL,
    planned_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial_number, pin, kind, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE device_template (
    serial_number TEXT NOT NULL,
    pin           TEXT NOT NULL,
    key           TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial_number, pin, key)
) STRICT, WITHOUT ROWID;
)sql",
};

} // namespace

std::string_view sqlite_database::migration_sql(int from_version)
{
    if (from_version < 0 || from_version >= schema_version) {
        return {};
    }
    return migrations[static_cast<std::size_t>(from_version)];
}

namespace sqlite {

void migrate(connection& db, int from_version)
{
    constexpr int schema_version = sqlite_database::schema_version;
    for (int v = from_version; v < schema_version; ++v) {
        transaction tx{db};
        exec(db, std::string{migrations[static_cast<std::size_t>(v)]}.c_str());
        exec(db, fmt::format("PRAGMA user_version = {}", v + 1).c_str());
        tx.commit();
    }
}

} // namespace sqlite
} // namespace adms::server
