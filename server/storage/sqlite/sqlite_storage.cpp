#include "server/storage/sqlite/sqlite_storage.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <concepts>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sys/statvfs.h>
#include <unistd.h>
#include <unordered_map>
#include <variant>

namespace adms::server {
namespace {

// The schema, one migration per version: migrations[i] takes user_version i to i + 1. Append
// only; never edit a migration that has shipped.
constexpr std::array<std::string_view, sqlite_storage::schema_version> migrations{
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
};

// A failed SQLite call, thrown inside this file only and turned into a storage_error by run().
struct sqlite_failure {
    std::string message;
};

[[noreturn]] void fail(sqlite3* db, std::string_view what)
{
    throw sqlite_failure{fmt::format("{}: {} (SQLite code {})", what, sqlite3_errmsg(db),
                                     sqlite3_extended_errcode(db))};
}

void exec(sqlite3* db, const char* sql)
{
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        fail(db, "exec");
    }
}

// Bytes for a BLOB parameter (a string_view binds as TEXT).
struct blob {
    std::string_view bytes;
};

std::int64_t to_ms(instant t)
{
    return t.time_since_epoch().count();
}
instant from_ms(std::int64_t ms)
{
    return instant{std::chrono::milliseconds{ms}};
}

// A value for a statement parameter, when the parameters are only known at run time.
using parameter = std::variant<std::int64_t, std::string_view>;

// Hashes std::string and std::string_view alike, so a lookup by string_view allocates nothing.
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Prepared statements kept per connection between calls: compiling the SQL again on every call
// costs more than running a one-row INSERT. A statement is taken out while in use, so two
// uses of the same SQL at once (nested) get separate statements. SQLite re-prepares a kept
// statement by itself after a schema change.
// Thread safety: every function may be called from any thread (one mutex guards the map).
class statement_cache {
  public:
    using map = std::unordered_map<std::string, sqlite3_stmt*, string_hash, std::equal_to<>>;
    using entry = map::node_type;

    // The kept statement for `sql` on `db`, taken out of the cache; empty when there is none.
    static entry take(sqlite3* db, std::string_view sql)
    {
        std::lock_guard lock{mutex()};
        auto by_db = connections().find(db);
        if (by_db == connections().end()) {
            return {};
        }
        auto it = by_db->second.find(sql);
        return it == by_db->second.end() ? entry{} : by_db->second.extract(it);
    }
    // Returns a statement `take` handed out.
    static void give_back(sqlite3* db, entry e)
    {
        std::lock_guard lock{mutex()};
        auto result = connections()[db].insert(std::move(e));
        if (!result.inserted) {
            sqlite3_finalize(result.node.mapped()); // another copy came back first
        }
    }
    // Keeps a statement prepared outside the cache, or finalizes it when the connection keeps
    // enough already (queries built with a varying number of parameters are not worth keeping).
    static void keep(sqlite3* db, std::string_view sql, sqlite3_stmt* stmt)
    {
        std::lock_guard lock{mutex()};
        auto& kept = connections()[db];
        if (kept.size() >= max_per_connection || !kept.emplace(std::string{sql}, stmt).second) {
            sqlite3_finalize(stmt);
        }
    }
    // Finalizes every statement kept for `db`: call before closing it.
    static void forget(sqlite3* db)
    {
        std::lock_guard lock{mutex()};
        auto it = connections().find(db);
        if (it == connections().end()) {
            return;
        }
        for (auto& [sql, stmt] : it->second) {
            sqlite3_finalize(stmt);
        }
        connections().erase(it);
    }

  private:
    static constexpr std::size_t max_per_connection = 128;
    static std::mutex& mutex()
    {
        static std::mutex m;
        return m;
    }
    static std::unordered_map<sqlite3*, map>& connections()
    {
        static std::unordered_map<sqlite3*, map> c;
        return c;
    }
};

// Closes a connection after finalizing its kept statements; SQLite's result code.
int close_connection(sqlite3* db)
{
    statement_cache::forget(db);
    return sqlite3_close(db);
}

// A prepared statement; parameters bind in order, columns read by index.
class statement {
  public:
    statement(sqlite3* db, std::string_view sql) : db_{db}, cached_{statement_cache::take(db, sql)}
    {
        if (!cached_.empty()) {
            stmt_ = cached_.mapped();
            return;
        }
        if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
            sqlite3_finalize(stmt_); // null unless prepare made a statement before failing
            fail(db, "prepare");
        }
        sql_.assign(sql); // the caller's SQL may be a temporary
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement()
    {
        // Reset ends the statement's read of the database (it must not hold a snapshot open).
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        if (!cached_.empty()) {
            statement_cache::give_back(db_, std::move(cached_));
        } else {
            statement_cache::keep(db_, sql_, stmt_);
        }
    }

    // Resets the statement and binds `values` to parameters 1, 2, ...
    template <class... Values>
    statement& bind(const Values&... values)
    {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        int index = 0;
        (bind_one(++index, values), ...);
        return *this;
    }

    // Resets the statement and binds `values` to parameters 1, 2, ...
    statement& bind_all(std::span<const parameter> values)
    {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        int index = 0;
        for (const auto& value : values) {
            ++index;
            std::visit([&](const auto& v) { bind_one(index, v); }, value);
        }
        return *this;
    }

    // Steps once: true when a row is available, false when done.
    bool step()
    {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc == SQLITE_DONE) {
            return false;
        }
        fail(db_, "step");
    }

    // Steps to completion, for statements that return no rows.
    void run()
    {
        while (step()) {
        }
    }

    bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    int small_integer(int column) const
    {
        auto v = integer(column);
        return static_cast<int>(std::clamp<std::int64_t>(v, std::numeric_limits<int>::min(),
                                                         std::numeric_limits<int>::max()));
    }
    std::string text(int column) const
    {
        // Bytes as stored: column_blob does no encoding conversion and keeps embedded NULs.
        const void* data = sqlite3_column_blob(stmt_, column);
        int size = sqlite3_column_bytes(stmt_, column);
        return data ? std::string(static_cast<const char*>(data), static_cast<std::size_t>(size))
                    : std::string{};
    }
    std::optional<std::string> optional_text(int column) const
    {
        return is_null(column) ? std::nullopt : std::optional<std::string>{text(column)};
    }
    std::optional<std::int64_t> optional_integer(int column) const
    {
        return is_null(column) ? std::nullopt : std::optional<std::int64_t>{integer(column)};
    }
    std::optional<int> optional_small_integer(int column) const
    {
        return is_null(column) ? std::nullopt : std::optional<int>{small_integer(column)};
    }
    instant time(int column) const { return from_ms(integer(column)); }
    std::optional<instant> optional_time(int column) const
    {
        return is_null(column) ? std::nullopt : std::optional<instant>{time(column)};
    }

  private:
    void check(int rc)
    {
        if (rc != SQLITE_OK) {
            fail(db_, "bind");
        }
    }
    void bind_one(int i, std::nullopt_t) { check(sqlite3_bind_null(stmt_, i)); }
    template <std::integral Integer>
    void bind_one(int i, Integer v)
    {
        // bool binds as 0/1; wider unsigned values do not occur (callers cast to int64 first).
        check(sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)));
    }
    void bind_one(int i, instant v) { check(sqlite3_bind_int64(stmt_, i, to_ms(v))); }
    void bind_one(int i, std::string_view v)
    {
        check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    }
    void bind_one(int i, const std::string& v) { bind_one(i, std::string_view{v}); }
    void bind_one(int i, const char* v) { bind_one(i, std::string_view{v}); }
    void bind_one(int i, blob v)
    {
        // A zero-length BLOB must not bind as NULL: pass a non-null pointer.
        check(sqlite3_bind_blob64(stmt_, i, v.bytes.empty() ? "" : v.bytes.data(), v.bytes.size(),
                                  SQLITE_TRANSIENT));
    }
    template <class T>
    void bind_one(int i, const std::optional<T>& v)
    {
        if (v) {
            bind_one(i, *v);
        } else {
            bind_one(i, std::nullopt);
        }
    }

    sqlite3* db_;
    statement_cache::entry cached_; // empty when prepared here
    std::string sql_;               // the SQL when prepared here
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN ... ROLLBACK around reads that must see one snapshot (a deferred transaction takes its
// snapshot at the first read); ends however the scope is left.
class read_transaction {
  public:
    explicit read_transaction(sqlite3* db) : db_{db} { exec(db_, "BEGIN"); }
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;
    ~read_transaction()
    {
        if (sqlite3_get_autocommit(db_) == 0) {
            // Ending a read transaction cannot lose anything, whatever the outcome.
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
    }

  private:
    sqlite3* db_;
};

// The connection whose batch (write_batch) this thread is running, if any.
thread_local sqlite3* batch_connection = nullptr;

// One write call's transaction: BEGIN IMMEDIATE ... COMMIT, or inside a batch a savepoint of the
// batch's transaction (SAVEPOINT ... RELEASE), so a failing call undoes only itself. Rolls back
// when left without commit (error or exception).
class transaction {
  public:
    explicit transaction(sqlite3* db) : db_{db}, nested_{batch_connection == db}
    {
        if (!nested_) {
            exec(db_, "BEGIN IMMEDIATE");
            return;
        }
        // SQLite rolls a whole transaction back by itself after some errors (disk full, I/O):
        // then the batch is lost, and this call must not go on and commit on its own.
        if (sqlite3_get_autocommit(db_) != 0) {
            throw sqlite_failure{"the batch's transaction was rolled back by an earlier error"};
        }
        exec(db_, "SAVEPOINT write_call");
    }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction()
    {
        if (done_ || sqlite3_get_autocommit(db_) != 0) {
            return;
        }
        // Nothing useful to do if the rollback itself fails: SQLite then rolls back when the
        // connection closes, and the caller already reports the original failure.
        if (nested_) {
            sqlite3_exec(db_, "ROLLBACK TO write_call; RELEASE write_call", nullptr, nullptr,
                         nullptr);
        } else {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
    }
    void commit()
    {
        exec(db_, nested_ ? "RELEASE write_call" : "COMMIT");
        done_ = true;
    }

  private:
    sqlite3* db_;
    bool nested_;
    bool done_ = false;
};

int user_version(sqlite3* db)
{
    statement s{db, "PRAGMA user_version"};
    return s.step() ? s.small_integer(0) : 0;
}

std::string pragma_text(sqlite3* db, const char* sql)
{
    statement s{db, sql};
    return s.step() ? s.text(0) : std::string{};
}

std::int64_t clamp_limit(std::size_t limit)
{
    return static_cast<std::int64_t>(
        std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

// The id of a command as the device echoes it: canonical decimal only ("007" is not "7").
std::optional<std::int64_t> parse_command_id(std::string_view id)
{
    if (id.empty() || id.size() > 16 || (id.size() > 1 && id.front() == '0')) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
    if (ec != std::errc{} || end != id.data() + id.size() || value <= 0) {
        return std::nullopt;
    }
    return value;
}

std::string join_key_values(const std::vector<protocol::key_value>& items)
{
    std::string out;
    for (const auto& kv : items) {
        if (!out.empty()) {
            out += '\n';
        }
        out += kv.key;
        out += '=';
        out += kv.value;
    }
    return out;
}

std::vector<protocol::key_value> split_key_values(std::string_view text)
{
    std::vector<protocol::key_value> out;
    while (!text.empty()) {
        auto end = text.find('\n');
        auto line = text.substr(0, end);
        auto eq = line.find('=');
        if (eq == std::string_view::npos) {
            out.push_back({std::string{line}, {}});
        } else {
            out.push_back({std::string{line.substr(0, eq)}, std::string{line.substr(eq + 1)}});
        }
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
    return out;
}

std::string encode_objects(const std::vector<std::string>& objects)
{
    std::string out;
    for (const auto& o : objects) {
        out += o;
        out += '\t';
    }
    return out;
}

std::vector<std::string> decode_objects(std::string_view text)
{
    std::vector<std::string> out;
    while (!text.empty()) {
        auto tab = text.find('\t');
        out.emplace_back(text.substr(0, tab));
        if (tab == std::string_view::npos) {
            break;
        }
        text.remove_prefix(tab + 1);
    }
    return out;
}

std::optional<command_state> parse_state(std::string_view text)
{
    for (auto s : {command_state::queued, command_state::sent, command_state::done,
                   command_state::failed, command_state::expired, command_state::unsendable}) {
        if (to_string(s) == text) {
            return s;
        }
    }
    return std::nullopt;
}

std::string_view match_name(result_match m)
{
    switch (m) {
    case result_match::matched:
        return "matched";
    case result_match::duplicate:
        return "duplicate";
    case result_match::unmatched:
        return "unmatched";
    }
    return "unmatched";
}

result_match parse_match(std::string_view text)
{
    if (text == "matched") {
        return result_match::matched;
    }
    return text == "duplicate" ? result_match::duplicate : result_match::unmatched;
}

constexpr std::string_view device_columns =
    "serial_number, first_seen_ms, last_seen_ms, remote_address, push_version, language, "
    "approved, alias, zone_override, dialect, attlog_stamp, operlog_stamp, attphoto_stamp, "
    "full_upload_requested, info, info_at_ms, time_sync_sent_ms, time_sync_confirmed_ms, "
    "time_sync_error, time_dialect_override, sync_at_minutes, sync_interval_minutes";

device_record read_device(const statement& s)
{
    device_record d;
    d.serial_number = s.text(0);
    d.first_seen = s.time(1);
    d.last_seen = s.time(2);
    d.remote_address = s.text(3);
    d.push_version = s.text(4);
    d.language = s.text(5);
    d.approved = s.integer(6) != 0;
    d.alias = s.optional_text(7);
    d.zone_override = s.optional_text(8);
    d.dialect = s.text(9);
    d.attlog_stamp = s.optional_text(10);
    d.operlog_stamp = s.optional_text(11);
    d.attphoto_stamp = s.optional_text(12);
    d.full_upload_requested = s.integer(13) != 0;
    d.info = s.text(14);
    d.info_at = s.optional_time(15);
    d.time_sync_sent_at = s.optional_time(16);
    d.time_sync_confirmed_at = s.optional_time(17);
    d.time_sync_error = s.text(18);
    d.time_dialect_override = s.optional_text(19);
    d.sync_at_minutes = s.optional_small_integer(20);
    d.sync_interval_minutes = s.optional_small_integer(21);
    return d;
}

std::vector<protocol::key_value> read_options(sqlite3* db, std::string_view serial_number)
{
    statement s{db, "SELECT key, value FROM device_option WHERE serial_number = ? ORDER BY key"};
    s.bind(serial_number);
    std::vector<protocol::key_value> out;
    while (s.step()) {
        out.push_back({s.text(0), s.text(1)});
    }
    return out;
}

std::optional<device_record> read_device(sqlite3* db, std::string_view serial_number)
{
    statement s{db, fmt::format("SELECT {} FROM device WHERE serial_number = ?", device_columns)};
    s.bind(serial_number);
    if (!s.step()) {
        return std::nullopt;
    }
    auto d = read_device(s);
    d.options = read_options(db, serial_number);
    return d;
}

constexpr std::string_view command_columns =
    "id, serial_number, text, kind, state, created_at_ms, sent_at_ms, attempts, result_code, "
    "result_command, result_content, result_info, result_at_ms";

queued_command read_command(const statement& s)
{
    queued_command c;
    c.id = std::to_string(s.integer(0));
    c.serial_number = s.text(1);
    c.text = s.text(2);
    c.kind = s.text(3);
    // The CHECK constraint allows only known states.
    c.state = parse_state(s.text(4)).value_or(command_state::failed);
    c.created_at = s.time(5);
    c.sent_at = s.optional_time(6);
    c.attempts = s.small_integer(7);
    c.return_code = s.optional_small_integer(8);
    c.result_command = s.text(9);
    c.result_content = s.text(10);
    c.result_info = s.text(11);
    c.result_at = s.optional_time(12);
    return c;
}

constexpr std::string_view punch_columns =
    "id, serial_number, pin, local_time, utc_s, status, verify, work_code, sequence, raw_line, "
    "received_at_ms, quarantined";

stored_punch read_punch(const statement& s)
{
    stored_punch p;
    p.id = s.integer(0);
    p.serial_number = s.text(1);
    p.pin = s.text(2);
    p.local_time = s.text(3);
    if (auto utc = s.optional_integer(4)) {
        p.utc = std::chrono::sys_seconds{std::chrono::seconds{*utc}};
    }
    p.status = s.small_integer(5);
    p.verify = s.small_integer(6);
    p.work_code = s.text(7);
    if (auto sequence = s.optional_integer(8)) {
        p.sequence = static_cast<std::uint64_t>(*sequence);
    }
    p.raw_line = s.text(9);
    p.received_at = s.time(10);
    p.quarantined = s.integer(11) != 0;
    return p;
}

// The WHERE clause shared by the list_* calls: ?1 serial number or NULL, ?2 after id, ?3 limit.
constexpr std::string_view list_filter =
    "WHERE (?1 IS NULL OR serial_number = ?1) AND id > ?2 ORDER BY id LIMIT ?3";

// Runs a list query: `read` turns each row into an item.
template <class Item, class Read>
std::vector<Item> list(sqlite3* db, std::string_view columns, std::string_view table,
                       const list_query& query, Read read)
{
    statement s{db, fmt::format("SELECT {} FROM {} {}", columns, table, list_filter)};
    s.bind(query.serial_number, query.after_id, clamp_limit(query.limit));
    std::vector<Item> out;
    while (s.step()) {
        out.push_back(read(s));
    }
    return out;
}

// Opens one connection with extended result codes and the busy timeout; throws sqlite_failure.
sqlite3* connect(const std::filesystem::path& file, int flags, std::chrono::milliseconds busy)
{
    // Once per process, before SQLite initializes: no memory statistics, whose global mutex
    // every SQLite allocation would take (a tenth of the writer's time under ingest). When
    // something else initialized SQLite first this is refused, and only speed is lost.
    static const bool configured [[maybe_unused]] =
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        close_connection(db);
        throw sqlite_failure{fmt::format("{} (SQLite code {})", message, rc)};
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
                                 busy.count(), 0, std::numeric_limits<int>::max())));
    return db;
}

// Runs `body(db)` on `db` (the caller holds its mutex); a SQLite failure becomes a storage_error
// naming `operation`.
template <class T, class Body>
storage_result<T> run_on(sqlite3* db, std::string_view operation, Body&& body)
{
    if (db == nullptr) {
        return storage_error{fmt::format("{}: the storage is closed", operation)};
    }
    try {
        return storage_result<T>{body(db)};
    } catch (const sqlite_failure& failure) {
        return storage_error{fmt::format("{}: {}", operation, failure.message)};
    }
}

} // namespace

template <class T, class Body>
storage_result<T> sqlite_storage::run(std::string_view operation, Body&& body)
{
    std::lock_guard lock{writer_.mutex};
    if (writer_.db == nullptr && !read_only_reason_.empty() && !try_reopen_writer()) {
        return storage_error{fmt::format("{}: read-only: {}", operation, read_only_reason_)};
    }
    return run_on<T>(writer_.db, operation, std::forward<Body>(body));
}

template <class T, class Body>
storage_result<T> sqlite_storage::read(std::string_view operation, Body&& body)
{
    std::lock_guard lock{reader_.mutex};
    return run_on<T>(reader_.db, operation, std::forward<Body>(body));
}

std::string_view sqlite_storage::migration_sql(int from_version)
{
    if (from_version < 0 || from_version >= schema_version) {
        return {};
    }
    return migrations[static_cast<std::size_t>(from_version)];
}

sqlite_storage::sqlite_storage(std::filesystem::path file, sqlite_open_options options)
    : file_{std::move(file)}, options_{options}
{
}

sqlite_storage::~sqlite_storage()
{
    close();
}

// Opens the read-write connection and brings it to the current schema: WAL, synchronous=FULL,
// foreign keys, migrations. Throws sqlite_failure; closes the connection when it throws.
sqlite3* sqlite_storage::open_writer(const std::filesystem::path& file,
                                     const sqlite_open_options& options)
{
    const int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3* db = connect(file, flags, options.busy_timeout);
    try {
        // Reading the schema version first also rejects a file that is not a database.
        int version = user_version(db);
        if (version > schema_version) {
            throw sqlite_failure{
                fmt::format("schema version {} is newer than this build's {}; use a newer admsd",
                            version, schema_version)};
        }
        // SQLite opens a file it may not write read-only without saying so: say it here, so
        // the caller can fall back to serving reads.
        if (sqlite3_db_readonly(db, "main") == 1) {
            throw sqlite_failure{"the database file or its directory is read-only"};
        }
        // WAL: readers do not block the writer; FULL: a commit is durable when COMMIT returns,
        // which is what lets the server answer OK only after the data is on disk.
        if (auto mode = pragma_text(db, "PRAGMA journal_mode = WAL"); mode != "wal") {
            throw sqlite_failure{fmt::format("cannot use WAL journal mode (got '{}')", mode)};
        }
        exec(db, "PRAGMA synchronous = FULL");
        // 64 MiB of page cache (the default is 2 MiB): batches of inserts land on index pages
        // all over the punch indexes, which are then read from the cache, not the file.
        exec(db, "PRAGMA cache_size = -65536");
        // Checkpoint every 10,000 WAL pages (40 MiB), not 1,000: an index page written many
        // times between checkpoints is copied into the database once.
        exec(db, "PRAGMA wal_autocheckpoint = 10000");
        exec(db, "PRAGMA foreign_keys = ON");
        for (int v = version; v < schema_version; ++v) {
            transaction tx{db};
            exec(db, std::string{migrations[static_cast<std::size_t>(v)]}.c_str());
            exec(db, fmt::format("PRAGMA user_version = {}", v + 1).c_str());
            tx.commit();
        }
    } catch (...) {
        close_connection(db);
        throw;
    }
    return db;
}

// Opens the read-only connection. On a read-only file system SQLite cannot create the WAL's
// shared-memory file; `immutable` then reads the database file alone (what was checkpointed).
sqlite3* sqlite_storage::open_reader(const std::filesystem::path& file,
                                     const sqlite_open_options& options, bool immutable)
{
    if (!immutable) {
        return connect(file, SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READONLY, options.busy_timeout);
    }
    // A URI: '%', '?' and '#' in the path must be percent-encoded.
    std::string path;
    for (char c : file.string()) {
        if (c == '%' || c == '?' || c == '#') {
            path += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        } else {
            path += c;
        }
    }
    auto uri = fmt::format("file:{}?immutable=1", path);
    return connect(uri, SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                   options.busy_timeout);
}

// Says in plain words why `file` cannot be written when the file system knows, then SQLite's
// message.
static std::string why_not_writable(const std::filesystem::path& file,
                                    const std::string& sqlite_message)
{
    auto dir = file.parent_path().empty() ? std::filesystem::path{"."} : file.parent_path();
    struct statvfs fs {};
    if (::statvfs(dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
        return fmt::format("{} is on a read-only file system ({})", dir.string(), sqlite_message);
    }
    if (::access(dir.c_str(), W_OK) != 0 || ::access(file.c_str(), W_OK) != 0) {
        return fmt::format("no write permission on {} or {} ({})", dir.string(), file.string(),
                           sqlite_message);
    }
    return sqlite_message;
}

storage_result<std::unique_ptr<sqlite_storage>>
sqlite_storage::open(const std::filesystem::path& file, const sqlite_open_options& options)
{
    // From the first connection on the object owns the connections, so every exit closes them.
    std::unique_ptr<sqlite_storage> self{new sqlite_storage{file, options}};
    try {
        if (options.read_only) {
            self->reader_.db = open_reader(file, options, false);
            int version = user_version(self->reader_.db);
            if (version != schema_version) {
                return storage_error{fmt::format(
                    "open {}: schema version {} is not this build's {}{}", file.string(), version,
                    schema_version,
                    version < schema_version ? "; open it read-write once to migrate" : "")};
            }
            exec(self->reader_.db, "PRAGMA foreign_keys = ON");
            // Writes go to a read-only connection too, so each fails with SQLite's own "attempt
            // to write a readonly database".
            self->writer_.db = open_reader(file, options, false);
            return self;
        }
        try {
            self->writer_.db = open_writer(file, options);
        } catch (const sqlite_failure& failure) {
            std::error_code ec;
            if (!options.read_only_fallback || !std::filesystem::exists(file, ec)) {
                throw;
            }
            return open_degraded(std::move(self), why_not_writable(file, failure.message));
        }
        // After the migrations, so the reader never sees an older schema.
        self->reader_.db = open_reader(file, options, false);
    } catch (const sqlite_failure& failure) {
        return storage_error{fmt::format("open {}: {}", file.string(), failure.message)};
    }
    return self;
}

storage_result<std::unique_ptr<sqlite_storage>>
sqlite_storage::open_degraded(std::unique_ptr<sqlite_storage> self, std::string why)
{
    const auto& file = self->file_;
    std::string first_error;
    for (bool immutable : {false, true}) {
        try {
            sqlite3* db = open_reader(file, self->options_, immutable);
            self->reader_.db = db;
            int version = user_version(db);
            if (version != schema_version) {
                // Migrating needs writes: nothing to serve from an older schema.
                return storage_error{fmt::format("open {}: {}; and read-only, its schema version "
                                                 "{} cannot be brought to {}",
                                                 file.string(), why, version, schema_version)};
            }
            exec(db, "PRAGMA foreign_keys = ON");
            self->read_only_reason_ = why;
            return self;
        } catch (const sqlite_failure& failure) {
            if (self->reader_.db != nullptr) {
                close_connection(self->reader_.db);
                self->reader_.db = nullptr;
            }
            if (first_error.empty()) {
                first_error = failure.message;
            }
        }
    }
    return storage_error{
        fmt::format("open {}: {}; reading it failed too: {}", file.string(), why, first_error)};
}

std::string sqlite_storage::read_only_reason()
{
    std::lock_guard lock{writer_.mutex};
    return writer_.db == nullptr ? read_only_reason_ : std::string{};
}

bool sqlite_storage::try_reopen_writer()
{
    // Caller holds writer_.mutex. At most one attempt a second: each may wait busy_timeout.
    auto now = std::chrono::steady_clock::now();
    if (now < next_reopen_) {
        return false;
    }
    next_reopen_ = now + std::chrono::seconds{1};
    try {
        sqlite3* writer = open_writer(file_, options_);
        sqlite3* reader = nullptr;
        try {
            reader = open_reader(file_, options_, false);
        } catch (const sqlite_failure&) {
            close_connection(writer);
            throw;
        }
        writer_.db = writer;
        std::lock_guard lock{reader_.mutex};
        // The immutable reader ignored the WAL: the new one sees every committed write.
        close_connection(reader_.db);
        reader_.db = reader;
        read_only_reason_.clear();
        return true;
    } catch (const sqlite_failure& failure) {
        read_only_reason_ = failure.message;
        return false;
    }
}

storage_status sqlite_storage::probe()
{
    return run<std::monostate>("probe", [](sqlite3* db) {
        // A real durable write of one page (the header): fails like an upload would when the
        // disk is full, read-only or locked.
        transaction tx{db};
        exec(db, fmt::format("PRAGMA user_version = {}", schema_version).c_str());
        tx.commit();
        return std::monostate{};
    });
}

storage_status sqlite_storage::write_batch(const std::function<void()>& work)
{
    std::lock_guard lock{writer_.mutex};
    if (writer_.db == nullptr && !read_only_reason_.empty() && !try_reopen_writer()) {
        return storage_error{fmt::format("write batch: read-only: {}", read_only_reason_)};
    }
    sqlite3* db = writer_.db;
    if (db == nullptr) {
        return storage_error{"write batch: the storage is closed"};
    }
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
        return storage_error{fmt::format("write batch: {} (SQLite code {})", sqlite3_errmsg(db),
                                         sqlite3_extended_errcode(db))};
    }
    // The calls `work` makes see batch_connection and nest as savepoints. Should `work` throw
    // after all, the batch is rolled back and the exception goes on.
    struct batch_scope {
        sqlite3* db;
        bool ended = false;
        explicit batch_scope(sqlite3* d) : db{d} { batch_connection = d; }
        batch_scope(const batch_scope&) = delete;
        batch_scope& operator=(const batch_scope&) = delete;
        ~batch_scope()
        {
            batch_connection = nullptr;
            if (!ended && sqlite3_get_autocommit(db) == 0) {
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }
    } scope{db};
    work();
    scope.ended = true;
    batch_connection = nullptr;
    if (sqlite3_get_autocommit(db) != 0) {
        return storage_error{"write batch: an error rolled the transaction back"};
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        storage_error error{fmt::format("write batch: commit: {} (SQLite code {})",
                                        sqlite3_errmsg(db), sqlite3_extended_errcode(db))};
        if (sqlite3_get_autocommit(db) == 0) {
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        return error;
    }
    return std::monostate{};
}

storage_status sqlite_storage::check()
{
    return read<std::monostate>("check", [](sqlite3* db) {
        // Reads the schema page, so an unreadable or damaged file fails here.
        statement s{db, "SELECT count(*) FROM sqlite_schema"};
        s.step();
        return std::monostate{};
    });
}

storage_status sqlite_storage::close()
{
    std::scoped_lock lock{writer_.mutex, reader_.mutex};
    read_only_reason_.clear(); // closed for good: no reopening
    // Kept statements are finalized first and the others when their call returns, so close
    // cannot be busy. The reader
    // goes first: on the last connection SQLite checkpoints the WAL into the database file and
    // removes it, which the read-only reader could not do.
    for (auto* c : {&reader_, &writer_}) {
        if (c->db == nullptr) {
            continue;
        }
        if (close_connection(c->db) != SQLITE_OK) {
            return storage_error{fmt::format("close: {} (SQLite code {})", sqlite3_errmsg(c->db),
                                             sqlite3_errcode(c->db))};
        }
        c->db = nullptr;
    }
    return std::monostate{};
}

storage_result<device_record> sqlite_storage::upsert_device(const device_record& device)
{
    return run<device_record>("upsert_device", [&](sqlite3* db) {
        transaction tx{db};
        auto merged = device;
        if (merged.alias && merged.alias->empty()) {
            merged.alias.reset();
        }
        if (auto existing = read_device(db, device.serial_number)) {
            merged.first_seen = std::min(existing->first_seen, device.first_seen);
            merged.attlog_stamp = merge_stamp(existing->attlog_stamp, device.attlog_stamp);
            merged.operlog_stamp = merge_stamp(existing->operlog_stamp, device.operlog_stamp);
            merged.attphoto_stamp = merge_stamp(existing->attphoto_stamp, device.attphoto_stamp);
        }
        statement s{db, fmt::format(R"sql(
INSERT INTO device ({})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial_number) DO UPDATE SET
    first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms,
    remote_address = excluded.remote_address, push_version = excluded.push_version,
    language = excluded.language, approved = excluded.approved, alias = excluded.alias,
    zone_override = excluded.zone_override, dialect = excluded.dialect,
    attlog_stamp = excluded.attlog_stamp, operlog_stamp = excluded.operlog_stamp,
    attphoto_stamp = excluded.attphoto_stamp,
    full_upload_requested = excluded.full_upload_requested, info = excluded.info,
    info_at_ms = excluded.info_at_ms, time_sync_sent_ms = excluded.time_sync_sent_ms,
    time_sync_confirmed_ms = excluded.time_sync_confirmed_ms,
    time_sync_error = excluded.time_sync_error,
    time_dialect_override = excluded.time_dialect_override,
    sync_at_minutes = excluded.sync_at_minutes,
    sync_interval_minutes = excluded.sync_interval_minutes
)sql",
                                    device_columns)};
        s.bind(merged.serial_number, merged.first_seen, merged.last_seen, merged.remote_address,
               merged.push_version, merged.language, merged.approved, merged.alias,
               merged.zone_override, merged.dialect, merged.attlog_stamp, merged.operlog_stamp,
               merged.attphoto_stamp, merged.full_upload_requested, merged.info, merged.info_at,
               merged.time_sync_sent_at, merged.time_sync_confirmed_at, merged.time_sync_error,
               merged.time_dialect_override, merged.sync_at_minutes, merged.sync_interval_minutes)
            .run();
        auto stored = read_device(db, device.serial_number);
        tx.commit();
        // The row was just written inside this transaction, so it is there.
        return stored.value_or(merged);
    });
}

storage_result<std::optional<device_record>>
sqlite_storage::load_device(std::string_view serial_number)
{
    return read<std::optional<device_record>>("load_device", [&](sqlite3* db) {
        read_transaction snapshot{db}; // the row and its options as of one commit
        return read_device(db, serial_number);
    });
}

storage_result<std::vector<device_record>> sqlite_storage::load_devices()
{
    return read<std::vector<device_record>>("load_devices", [&](sqlite3* db) {
        std::vector<device_record> out;
        {
            statement s{
                db, fmt::format("SELECT {} FROM device ORDER BY serial_number", device_columns)};
            while (s.step()) {
                out.push_back(read_device(s));
            }
        }
        std::map<std::string, std::vector<protocol::key_value>, std::less<>> options;
        statement s{db, "SELECT serial_number, key, value FROM device_option ORDER BY "
                        "serial_number, key"};
        while (s.step()) {
            options[s.text(0)].push_back({s.text(1), s.text(2)});
        }
        for (auto& d : out) {
            if (auto it = options.find(d.serial_number); it != options.end()) {
                d.options = std::move(it->second);
            }
        }
        return out;
    });
}

storage_result<std::size_t>
sqlite_storage::store_device_options(std::string_view serial_number,
                                     std::span<const protocol::key_value> options,
                                     instant received_at)
{
    return run<std::size_t>("store_device_options", [&](sqlite3* db) {
        transaction tx{db};
        statement device{db, "INSERT INTO device (serial_number, first_seen_ms, last_seen_ms) "
                             "VALUES (?, ?, ?) ON CONFLICT (serial_number) DO NOTHING"};
        device.bind(serial_number, received_at, received_at).run();
        statement s{db, R"sql(
INSERT INTO device_option (serial_number, key, value, updated_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (serial_number, key) DO UPDATE SET
    value = excluded.value, updated_at_ms = excluded.updated_at_ms
)sql"};
        for (const auto& kv : options) {
            s.bind(serial_number, kv.key, kv.value, received_at).run();
        }
        tx.commit();
        return options.size();
    });
}

storage_result<store_counts> sqlite_storage::store_punches(std::string_view serial_number,
                                                           std::span<const punch_input> punches,
                                                           instant received_at, bool quarantined)
{
    return run<store_counts>("store_punches", [&](sqlite3* db) {
        transaction tx{db};
        statement s{db, R"sql(
INSERT INTO punch (serial_number, pin, local_time, utc_s, status, verify, work_code, sequence,
                   raw_line, received_at_ms, quarantined)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        store_counts counts;
        for (const auto& p : punches) {
            const auto& r = p.record;
            std::optional<std::int64_t> utc;
            if (p.utc) {
                utc = p.utc->time_since_epoch().count();
            }
            std::optional<std::int64_t> sequence;
            if (r.sequence) {
                // Stored as the same 64 bits; values above INT64_MAX read back unchanged.
                sequence = static_cast<std::int64_t>(*r.sequence);
            }
            s.bind(serial_number, r.pin, protocol::format_civil_time(r.time), utc, r.status,
                   r.verify, r.work_code, sequence, p.raw_line, received_at, quarantined)
                .run();
            if (sqlite3_changes(db) == 1) {
                ++counts.stored;
            } else {
                ++counts.duplicate;
            }
        }
        tx.commit();
        return counts;
    });
}

storage_result<std::vector<stored_punch>> sqlite_storage::list_punches(const list_query& query)
{
    return read<std::vector<stored_punch>>("list_punches", [&](sqlite3* db) {
        return list<stored_punch>(db, punch_columns, "punch", query, read_punch);
    });
}

storage_result<std::vector<stored_punch>> sqlite_storage::query_punches(const punch_filter& filter)
{
    // With several serial numbers the plan is punch_by_device (serial_number=? AND id>?) and a
    // temporary B-tree for ORDER BY, but SQLite bounds that sort by the LIMIT and leaves each
    // device's range once it can no longer contribute, so a page reads about (devices x limit)
    // index entries, not every row after the cursor (other conditions are checked on the rows
    // read, so a very selective one reads more). A PIN uses punch_by_pin (pin=? AND id>?).
    return read<std::vector<stored_punch>>("query_punches", [&](sqlite3* db) {
        std::string sql = fmt::format("SELECT {} FROM punch WHERE id > ?", punch_columns);
        std::vector<parameter> parameters{filter.after_id};
        auto where = [&](std::string_view condition, parameter value) {
            sql += " AND ";
            sql += condition;
            parameters.push_back(value);
        };
        if (filter.up_to_id) {
            where("id <= ?", *filter.up_to_id);
        }
        if (!filter.serial_numbers.empty()) {
            // One parameter each: values never become SQL text.
            std::string placeholders;
            for (const auto& serial_number : filter.serial_numbers) {
                placeholders += placeholders.empty() ? "?" : ", ?";
                parameters.emplace_back(std::string_view{serial_number});
            }
            sql += fmt::format(" AND serial_number IN ({})", placeholders);
        }
        if (filter.pin) {
            where("pin = ?", std::string_view{*filter.pin});
        }
        if (filter.utc_from) {
            where("utc_s >= ?", std::int64_t{filter.utc_from->time_since_epoch().count()});
        }
        if (filter.utc_to) {
            where("utc_s < ?", std::int64_t{filter.utc_to->time_since_epoch().count()});
        }
        if (filter.local_from) {
            where("local_time >= ?", std::string_view{*filter.local_from});
        }
        if (filter.local_to) {
            where("local_time < ?", std::string_view{*filter.local_to});
        }
        if (filter.received_from) {
            where("received_at_ms >= ?", to_ms(*filter.received_from));
        }
        if (!filter.include_quarantined) {
            sql += " AND quarantined = 0";
        }
        sql += filter.newest_first ? " ORDER BY id DESC LIMIT ?" : " ORDER BY id LIMIT ?";
        parameters.emplace_back(clamp_limit(filter.limit));

        statement s{db, sql};
        s.bind_all(parameters);
        std::vector<stored_punch> out;
        while (s.step()) {
            out.push_back(read_punch(s));
        }
        return out;
    });
}

storage_result<std::int64_t> sqlite_storage::last_punch_id()
{
    return read<std::int64_t>("last_punch_id", [](sqlite3* db) {
        statement s{db, "SELECT coalesce(max(id), 0) FROM punch"};
        return s.step() ? s.integer(0) : std::int64_t{0};
    });
}

storage_result<std::size_t> sqlite_storage::release_quarantine(std::string_view serial_number)
{
    return run<std::size_t>("release_quarantine", [&](sqlite3* db) {
        transaction tx{db};
        // Released punches become visible now, so they move past every id handed out so far
        // (keeping their order): an HR system reading by cursor gets them on its next page
        // instead of never, since its cursor is already past their old ids.
        statement s{db, R"sql(
UPDATE punch SET quarantined = 0,
    id = id + (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'punch')
WHERE serial_number = ? AND quarantined = 1)sql"};
        s.bind(serial_number).run();
        auto changed = static_cast<std::size_t>(sqlite3_changes(db));
        if (changed > 0) {
            statement bump{db, "UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM punch) "
                               "WHERE name = 'punch'"};
            bump.run();
        }
        tx.commit();
        return changed;
    });
}

storage_result<store_counts>
sqlite_storage::store_rejected_lines(std::string_view serial_number, std::string_view table,
                                     std::span<const protocol::rejected_line> lines,
                                     instant received_at)
{
    return run<store_counts>("store_rejected_lines", [&](sqlite3* db) {
        transaction tx{db};
        statement s{db, R"sql(
INSERT INTO rejected_line (serial_number, table_name, line_number, text, reason, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        store_counts counts;
        for (const auto& line : lines) {
            s.bind(serial_number, table, static_cast<std::int64_t>(line.line_number), line.text,
                   line.reason, received_at)
                .run();
            ++(sqlite3_changes(db) == 1 ? counts.stored : counts.duplicate);
        }
        tx.commit();
        return counts;
    });
}

storage_result<std::vector<stored_rejected_line>>
sqlite_storage::list_rejected_lines(const list_query& query)
{
    return read<std::vector<stored_rejected_line>>("list_rejected_lines", [&](sqlite3* db) {
        return list<stored_rejected_line>(
            db, "id, serial_number, table_name, line_number, text, reason, received_at_ms",
            "rejected_line", query, [](const statement& s) {
                stored_rejected_line r;
                r.id = s.integer(0);
                r.serial_number = s.text(1);
                r.table = s.text(2);
                r.line_number = static_cast<std::size_t>(s.integer(3));
                r.text = s.text(4);
                r.reason = s.text(5);
                r.received_at = s.time(6);
                return r;
            });
    });
}

storage_result<store_counts>
sqlite_storage::store_operlog(std::string_view serial_number,
                              std::span<const protocol::operlog_record> lines, instant received_at)
{
    return run<store_counts>("store_operlog", [&](sqlite3* db) {
        transaction tx{db};
        statement line_insert{db, R"sql(
INSERT INTO operlog_line (serial_number, tag, raw, pin, oplog_code, oplog_operator, oplog_time,
                          oplog_objects, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        // The last USER line received wins, re-sent or not: a device re-uploads its current users.
        statement user_upsert{db, R"sql(
INSERT INTO device_user (serial_number, pin, name, privilege, password, card, grp, time_zones,
                         verify, vice_card, raw, updated_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial_number, pin) DO UPDATE SET
    name = excluded.name, privilege = excluded.privilege, password = excluded.password,
    card = excluded.card, grp = excluded.grp, time_zones = excluded.time_zones,
    verify = excluded.verify, vice_card = excluded.vice_card, raw = excluded.raw,
    updated_at_ms = excluded.updated_at_ms
)sql"};
        store_counts counts;
        for (const auto& line : lines) {
            std::optional<std::string> pin;
            if (!line.oplog) {
                auto field = protocol::find_field(line, "PIN");
                if (!field) {
                    field = protocol::find_field(line, "Pin");
                }
                if (field) {
                    pin = std::string{*field};
                }
            }
            std::optional<int> code;
            std::optional<std::string> op, time, objects;
            if (line.oplog) {
                code = line.oplog->code;
                op = line.oplog->operator_id;
                time = protocol::format_civil_time(line.oplog->time);
                objects = encode_objects(line.oplog->objects);
            }
            line_insert
                .bind(serial_number, line.tag, line.raw, pin, code, op, time, objects, received_at)
                .run();
            ++(sqlite3_changes(db) == 1 ? counts.stored : counts.duplicate);
            if (auto user = protocol::to_user_info(line)) {
                user_upsert
                    .bind(serial_number, user->pin, user->name, user->privilege, user->password,
                          user->card, user->group, user->time_zones, user->verify, user->vice_card,
                          line.raw, received_at)
                    .run();
            }
        }
        tx.commit();
        return counts;
    });
}

storage_result<std::vector<stored_operlog_line>>
sqlite_storage::list_operlog(const list_query& query)
{
    return read<std::vector<stored_operlog_line>>("list_operlog", [&](sqlite3* db) {
        return list<stored_operlog_line>(
            db,
            "id, serial_number, tag, raw, pin, oplog_code, oplog_operator, oplog_time, "
            "oplog_objects, received_at_ms",
            "operlog_line", query, [](const statement& s) {
                stored_operlog_line l;
                l.id = s.integer(0);
                l.serial_number = s.text(1);
                l.tag = s.text(2);
                l.raw = s.text(3);
                l.pin = s.optional_text(4);
                if (!s.is_null(5)) {
                    protocol::oplog_entry e;
                    e.code = s.small_integer(5);
                    e.operator_id = s.text(6);
                    // Written by format_civil_time, so it parses back.
                    e.time = protocol::parse_civil_time(s.text(7)).value_or(
                        std::chrono::local_seconds{});
                    e.objects = decode_objects(s.text(8));
                    l.oplog = std::move(e);
                }
                l.received_at = s.time(9);
                return l;
            });
    });
}

storage_result<std::vector<stored_user>> sqlite_storage::list_users(std::string_view serial_number)
{
    return read<std::vector<stored_user>>("list_users", [&](sqlite3* db) {
        statement s{db, R"sql(
SELECT serial_number, pin, name, privilege, password, card, grp, time_zones, verify, vice_card,
       raw, updated_at_ms
FROM device_user WHERE serial_number = ? ORDER BY pin
)sql"};
        s.bind(serial_number);
        std::vector<stored_user> out;
        while (s.step()) {
            stored_user u;
            u.serial_number = s.text(0);
            u.user.pin = s.text(1);
            u.user.name = s.text(2);
            u.user.privilege = s.optional_small_integer(3);
            u.user.password = s.text(4);
            u.user.card = s.text(5);
            u.user.group = s.text(6);
            u.user.time_zones = s.text(7);
            u.user.verify = s.optional_small_integer(8);
            u.user.vice_card = s.text(9);
            u.raw = s.text(10);
            u.updated_at = s.time(11);
            out.push_back(std::move(u));
        }
        return out;
    });
}

storage_result<std::int64_t> sqlite_storage::store_table_body(std::string_view serial_number,
                                                              std::string_view table,
                                                              std::string_view body,
                                                              instant received_at)
{
    return run<std::int64_t>("store_table_body", [&](sqlite3* db) {
        transaction tx{db};
        statement s{db, "INSERT INTO table_body (serial_number, table_name, body, received_at_ms) "
                        "VALUES (?, ?, ?, ?)"};
        s.bind(serial_number, table, blob{body}, received_at).run();
        auto id = sqlite3_last_insert_rowid(db);
        tx.commit();
        return static_cast<std::int64_t>(id);
    });
}

storage_result<std::vector<stored_table_body>>
sqlite_storage::list_table_bodies(const list_query& query)
{
    return read<std::vector<stored_table_body>>("list_table_bodies", [&](sqlite3* db) {
        return list<stored_table_body>(db, "id, serial_number, table_name, body, received_at_ms",
                                       "table_body", query, [](const statement& s) {
                                           stored_table_body b;
                                           b.id = s.integer(0);
                                           b.serial_number = s.text(1);
                                           b.table = s.text(2);
                                           b.body = s.text(3);
                                           b.received_at = s.time(4);
                                           return b;
                                       });
    });
}

storage_result<store_counts> sqlite_storage::store_photo(std::string_view serial_number,
                                                         std::string_view file_name,
                                                         std::string_view bytes,
                                                         instant received_at)
{
    return run<store_counts>("store_photo", [&](sqlite3* db) {
        transaction tx{db};
        statement s{db, "INSERT INTO photo (serial_number, file_name, bytes, received_at_ms) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"};
        s.bind(serial_number, file_name, blob{bytes}, received_at).run();
        store_counts counts;
        ++(sqlite3_changes(db) == 1 ? counts.stored : counts.duplicate);
        tx.commit();
        return counts;
    });
}

storage_result<std::vector<stored_photo>> sqlite_storage::list_photos(const list_query& query)
{
    return read<std::vector<stored_photo>>("list_photos", [&](sqlite3* db) {
        return list<stored_photo>(db, "id, serial_number, file_name, bytes, received_at_ms",
                                  "photo", query, [](const statement& s) {
                                      stored_photo p;
                                      p.id = s.integer(0);
                                      p.serial_number = s.text(1);
                                      p.file_name = s.text(2);
                                      p.bytes = s.text(3);
                                      p.received_at = s.time(4);
                                      return p;
                                  });
    });
}

storage_result<std::string> sqlite_storage::enqueue_command(std::string_view serial_number,
                                                            std::string_view text,
                                                            std::string_view kind,
                                                            instant created_at)
{
    return run<std::string>("enqueue_command", [&](sqlite3* db) {
        transaction tx{db};
        statement s{db, "INSERT INTO command (serial_number, text, kind, state, created_at_ms) "
                        "VALUES (?, ?, ?, 'queued', ?)"};
        s.bind(serial_number, text, kind, created_at).run();
        auto id = sqlite3_last_insert_rowid(db);
        tx.commit();
        return std::to_string(id);
    });
}

storage_result<enqueued_command>
sqlite_storage::enqueue_command_unless_pending(std::string_view serial_number,
                                               std::string_view text, std::string_view kind,
                                               std::string_view kind_prefix, instant created_at)
{
    return run<enqueued_command>("enqueue_command_unless_pending", [&](sqlite3* db) {
        // BEGIN IMMEDIATE takes the write lock before the look-up, so no other connection can
        // queue one in between. The prefix is compared as bytes: no LIKE, no wildcards.
        transaction tx{db};
        statement pending{db, R"sql(
SELECT id FROM command
WHERE serial_number = ?1 AND state IN ('queued', 'sent')
  AND substr(CAST(kind AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)
ORDER BY id LIMIT 1
)sql"};
        pending.bind(serial_number, kind_prefix);
        if (pending.step()) {
            return enqueued_command{std::to_string(pending.integer(0)), false};
        }
        statement s{db, "INSERT INTO command (serial_number, text, kind, state, created_at_ms) "
                        "VALUES (?, ?, ?, 'queued', ?)"};
        s.bind(serial_number, text, kind, created_at).run();
        auto id = sqlite3_last_insert_rowid(db);
        tx.commit();
        return enqueued_command{std::to_string(id), true};
    });
}

storage_result<std::optional<queued_command>>
sqlite_storage::find_command(std::string_view serial_number, std::string_view id)
{
    return read<std::optional<queued_command>>(
        "find_command", [&](sqlite3* db) -> std::optional<queued_command> {
            auto number = parse_command_id(id);
            if (!number) {
                return std::nullopt; // not an id this storage hands out
            }
            statement s{db, fmt::format("SELECT {} FROM command WHERE id = ? AND serial_number = ?",
                                        command_columns)};
            s.bind(*number, serial_number);
            if (!s.step()) {
                return std::nullopt;
            }
            return read_command(s);
        });
}

storage_result<std::vector<queued_command>>
sqlite_storage::claim_commands(std::string_view serial_number, instant now,
                               const resend_policy& policy, const command_chooser& choose)
{
    return run<std::vector<queued_command>>("claim_commands", [&](sqlite3* db) {
        transaction tx{db};
        const instant resend_before = now - policy.resend_after;
        statement expire{db, R"sql(
UPDATE command SET state = 'expired'
WHERE serial_number = ? AND state = 'sent' AND attempts >= ? AND sent_at_ms <= ?
)sql"};
        expire.bind(serial_number, policy.max_attempts, resend_before).run();

        std::vector<queued_command> sendable;
        {
            statement s{db, fmt::format(R"sql(
SELECT {} FROM command
WHERE serial_number = ?
  AND (state = 'queued' OR (state = 'sent' AND sent_at_ms <= ? AND attempts < ?))
ORDER BY id
)sql",
                                        command_columns)};
            s.bind(serial_number, resend_before, policy.max_attempts);
            while (s.step()) {
                sendable.push_back(read_command(s));
            }
        }
        std::vector<queued_command> claimed;
        if (sendable.empty()) {
            tx.commit(); // the expiries
            return claimed;
        }
        auto choice = choose(sendable);

        std::map<std::string, queued_command*, std::less<>> offered;
        for (auto& c : sendable) {
            offered.emplace(c.id, &c);
        }
        statement mark_sent{db, "UPDATE command SET state = 'sent', sent_at_ms = ?, attempts = "
                                "attempts + 1 WHERE id = ?"};
        std::set<std::string, std::less<>> done;
        for (const auto& id : choice.send) {
            auto it = offered.find(id);
            if (it == offered.end() || !done.insert(id).second) {
                continue;
            }
            auto& c = *it->second;
            mark_sent.bind(now, parse_command_id(c.id).value()).run();
            c.state = command_state::sent;
            c.sent_at = now;
            ++c.attempts;
            claimed.push_back(c);
        }
        statement mark_unsendable{db, "UPDATE command SET state = 'unsendable' WHERE id = ?"};
        for (const auto& id : choice.unsendable) {
            auto it = offered.find(id);
            if (it == offered.end() || !done.insert(id).second) {
                continue;
            }
            mark_unsendable.bind(parse_command_id(it->second->id).value()).run();
        }
        tx.commit();
        return claimed;
    });
}

storage_result<std::vector<result_match>>
sqlite_storage::record_command_results(std::string_view serial_number,
                                       std::span<const protocol::command_result> results,
                                       instant received_at)
{
    return run<std::vector<result_match>>("record_command_results", [&](sqlite3* db) {
        transaction tx{db};
        statement find{db, "SELECT state FROM command WHERE id = ? AND serial_number = ?"};
        statement update{db, R"sql(
UPDATE command SET state = ?, result_code = ?, result_command = ?, result_content = ?,
                   result_info = ?, result_at_ms = ?
WHERE id = ?
)sql"};
        statement log{db, R"sql(
INSERT INTO command_result (serial_number, command_id, return_code, command, info, content,
                            match, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
)sql"};
        std::vector<result_match> out;
        for (const auto& r : results) {
            auto info = join_key_values(r.info);
            auto match = result_match::unmatched;
            if (auto id = parse_command_id(r.id)) {
                find.bind(*id, serial_number);
                if (find.step()) {
                    auto state = parse_state(find.text(0));
                    if (state == command_state::done || state == command_state::failed) {
                        match = result_match::duplicate;
                    } else {
                        match = result_match::matched;
                        auto next =
                            r.return_code >= 0 ? command_state::done : command_state::failed;
                        update
                            .bind(to_string(next), r.return_code, r.command, r.content, info,
                                  received_at, *id)
                            .run();
                    }
                }
            }
            log.bind(serial_number, r.id, r.return_code, r.command, info, r.content,
                     match_name(match), received_at)
                .run();
            out.push_back(match);
        }
        tx.commit();
        return out;
    });
}

storage_result<std::vector<stored_command_result>>
sqlite_storage::list_command_results(const list_query& query)
{
    return read<std::vector<stored_command_result>>("list_command_results", [&](sqlite3* db) {
        return list<stored_command_result>(
            db,
            "id, serial_number, command_id, return_code, command, info, content, match, "
            "received_at_ms",
            "command_result", query, [](const statement& s) {
                stored_command_result r;
                r.id = s.integer(0);
                r.serial_number = s.text(1);
                r.result.id = s.text(2);
                r.result.return_code = s.small_integer(3);
                r.result.command = s.text(4);
                r.result.info = split_key_values(s.text(5));
                r.result.content = s.text(6);
                r.match = parse_match(s.text(7));
                r.received_at = s.time(8);
                return r;
            });
    });
}

storage_result<std::vector<queued_command>>
sqlite_storage::list_commands(std::string_view serial_number, std::size_t recent)
{
    return read<std::vector<queued_command>>("list_commands", [&](sqlite3* db) {
        statement s{db, fmt::format(R"sql(
SELECT {} FROM command
WHERE serial_number = ?1
  AND (state IN ('queued', 'sent')
       OR id IN (SELECT id FROM command
                 WHERE serial_number = ?1 AND state NOT IN ('queued', 'sent')
                 ORDER BY id DESC LIMIT ?2))
ORDER BY id
)sql",
                                    command_columns)};
        s.bind(serial_number, clamp_limit(recent));
        std::vector<queued_command> out;
        while (s.step()) {
            out.push_back(read_command(s));
        }
        return out;
    });
}

storage_status sqlite_storage::set_command_text(std::string_view serial_number, std::string_view id,
                                                std::string_view text)
{
    return run<std::monostate>("set_command_text", [&](sqlite3* db) {
        auto number = parse_command_id(id);
        if (!number) {
            return std::monostate{}; // not an id this storage hands out
        }
        transaction tx{db};
        statement s{db, "UPDATE command SET text = ? WHERE id = ? AND serial_number = ?"};
        s.bind(text, *number, serial_number).run();
        tx.commit();
        return std::monostate{};
    });
}

storage_status sqlite_storage::store_clock_offsets(std::span<const clock_offset_point> points,
                                                   instant keep_after)
{
    return run<std::monostate>("store_clock_offsets", [&](sqlite3* db) {
        transaction tx{db};
        statement insert{db, R"sql(
INSERT INTO clock_offset (serial_number, measured_at_ms, offset_ms, uncertainty_ms, source)
VALUES (?, ?, ?, ?, ?)
)sql"};
        statement prune{db,
                        "DELETE FROM clock_offset WHERE serial_number = ? AND measured_at_ms < ?"};
        std::vector<std::string_view> pruned;
        for (const auto& p : points) {
            insert.bind(p.serial_number, p.measured_at, p.offset_ms, p.uncertainty_ms, p.source)
                .run();
            if (std::find(pruned.begin(), pruned.end(), p.serial_number) == pruned.end()) {
                prune.bind(p.serial_number, keep_after).run();
                pruned.push_back(p.serial_number);
            }
        }
        tx.commit();
        return std::monostate{};
    });
}

storage_result<std::vector<stored_clock_offset>>
sqlite_storage::list_clock_offsets(const clock_offset_query& query)
{
    return read<std::vector<stored_clock_offset>>("list_clock_offsets", [&](sqlite3* db) {
        statement s{db, R"sql(
SELECT id, serial_number, measured_at_ms, offset_ms, uncertainty_ms, source FROM clock_offset
WHERE serial_number = ?1 AND id > ?2
  AND (?3 IS NULL OR measured_at_ms >= ?3) AND (?4 IS NULL OR measured_at_ms < ?4)
ORDER BY id LIMIT ?5
)sql"};
        s.bind(query.serial_number, query.after_id, query.from, query.to, clamp_limit(query.limit));
        std::vector<stored_clock_offset> out;
        while (s.step()) {
            stored_clock_offset o;
            o.id = s.integer(0);
            o.point.serial_number = s.text(1);
            o.point.measured_at = s.time(2);
            o.point.offset_ms = s.integer(3);
            o.point.uncertainty_ms = s.integer(4);
            o.point.source = s.text(5);
            out.push_back(std::move(o));
        }
        return out;
    });
}

} // namespace adms::server
