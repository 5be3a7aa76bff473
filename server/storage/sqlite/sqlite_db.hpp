#pragma once

#include "server/storage/result.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

// The SQLite wrapper the storage's files share (internal to server/storage/sqlite/): statements,
// transactions, connections, and the conversion of failures into storage_error values.
namespace adms::server::sqlite {

// A failed SQLite call, thrown inside the SQLite storage only and turned into a storage_error by
// run_on().
struct sqlite_failure {
    std::string message;
};

// Throws the connection's last error as a sqlite_failure, naming `what`.
[[noreturn]] void fail(sqlite3* db, std::string_view what);

// Runs SQL that returns no rows; throws sqlite_failure.
void exec(sqlite3* db, const char* sql);

// Bytes for a BLOB parameter (a string_view binds as TEXT).
struct blob {
    std::string_view bytes;
};

inline std::int64_t to_ms(instant t)
{
    return t.time_since_epoch().count();
}
inline instant from_ms(std::int64_t ms)
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

// Prepared statements kept for one connection between calls: compiling the SQL again on every
// call costs more than running a one-row INSERT. A statement is taken out while in use, so two
// uses of the same SQL at once (nested) get separate statements. SQLite re-prepares a kept
// statement by itself after a schema change.
// Thread safety: none; its connection's owner serialises every use.
class statement_cache {
  public:
    using map = std::unordered_map<std::string, sqlite3_stmt*, string_hash, std::equal_to<>>;
    using entry = map::node_type;

    statement_cache() = default;
    statement_cache(const statement_cache&) = delete;
    statement_cache& operator=(const statement_cache&) = delete;
    statement_cache(statement_cache&& other) noexcept : kept_{std::move(other.kept_)}
    {
        other.kept_.clear();
    }
    statement_cache& operator=(statement_cache&& other) noexcept
    {
        if (this != &other) {
            forget();
            kept_ = std::move(other.kept_);
            other.kept_.clear();
        }
        return *this;
    }
    ~statement_cache() { forget(); }

    // The kept statement for `sql`, taken out of the cache; empty when there is none.
    entry take(std::string_view sql)
    {
        auto it = kept_.find(sql);
        return it == kept_.end() ? entry{} : kept_.extract(it);
    }
    // Returns a statement `take` handed out.
    void give_back(entry e)
    {
        auto result = kept_.insert(std::move(e));
        if (!result.inserted) {
            sqlite3_finalize(result.node.mapped()); // another copy came back first
        }
    }
    // Keeps a statement prepared outside the cache, or finalizes it when the connection keeps
    // enough already (queries built with a varying number of parameters are not worth keeping).
    void keep(std::string_view sql, sqlite3_stmt* stmt)
    {
        if (kept_.size() >= max_kept || !kept_.emplace(std::string{sql}, stmt).second) {
            sqlite3_finalize(stmt);
        }
    }
    // Finalizes every kept statement: call before closing the connection.
    void forget()
    {
        for (auto& [sql, stmt] : kept_) {
            sqlite3_finalize(stmt);
        }
        kept_.clear();
    }

  private:
    static constexpr std::size_t max_kept = 128;
    map kept_;
};

// One open SQLite connection (or none) and the statements kept for it; closes it when destroyed.
// Thread safety: none; the owner serialises its use (shared_connection).
class connection {
  public:
    connection() = default;
    explicit connection(sqlite3* db) : db_{db} {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    connection(connection&& other) noexcept
        : db_{std::exchange(other.db_, nullptr)}, statements_{std::move(other.statements_)}
    {
    }
    connection& operator=(connection&& other) noexcept
    {
        if (this != &other) {
            close();
            db_ = std::exchange(other.db_, nullptr);
            statements_ = std::move(other.statements_);
        }
        return *this;
    }
    ~connection() { close(); }

    sqlite3* handle() const { return db_; }
    explicit operator bool() const { return db_ != nullptr; }
    statement_cache& statements() { return statements_; }

    // Finalizes the kept statements and closes the connection: SQLite's result code. On failure
    // the connection stays open, so its error message can be read.
    int close();

  private:
    sqlite3* db_ = nullptr;
    statement_cache statements_;
};

// Runs SQL that returns no rows on `db`; throws sqlite_failure.
inline void exec(connection& db, const char* sql)
{
    exec(db.handle(), sql);
}

// A prepared statement; parameters bind in order, columns read by index.
class statement {
  public:
    statement(connection& db, std::string_view sql)
        : connection_{db}, db_{db.handle()}, cached_{db.statements().take(sql)}
    {
        if (!cached_.empty()) {
            stmt_ = cached_.mapped();
            return;
        }
        if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
            sqlite3_finalize(stmt_); // null unless prepare made a statement before failing
            fail(db_, "prepare");
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
            connection_.statements().give_back(std::move(cached_));
        } else {
            connection_.statements().keep(sql_, stmt_);
        }
    }

    // Resets the statement and binds `values` to parameters 1, 2, ...
    template <class... Values>
    statement& bind(const Values&... values)
    {
        // Every parameter gets a value: one left out would be NULL, silently (and a second
        // bind() call starts again from parameter 1).
        if (static_cast<int>(sizeof...(values)) != sqlite3_bind_parameter_count(stmt_)) {
            throw sqlite_failure{fmt::format("bind: {} values for {} parameters", sizeof...(values),
                                             sqlite3_bind_parameter_count(stmt_))};
        }
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

    connection& connection_;
    sqlite3* db_;
    statement_cache::entry cached_; // empty when prepared here
    std::string sql_;               // the SQL when prepared here
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN ... ROLLBACK around reads that must see one snapshot (a deferred transaction takes its
// snapshot at the first read); ends however the scope is left.
class read_transaction {
  public:
    explicit read_transaction(connection& db) : db_{db.handle()} { exec(db_, "BEGIN"); }
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

// A transaction of its own: BEGIN IMMEDIATE ... COMMIT (schema migrations). Rolls back when left
// without commit (error or exception).
class transaction {
  public:
    explicit transaction(connection& db) : db_{db.handle()} { exec(db_, "BEGIN IMMEDIATE"); }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction()
    {
        // Nothing useful to do if the rollback itself fails: SQLite then rolls back when the
        // connection closes, and the caller already reports the original failure.
        if (!done_ && sqlite3_get_autocommit(db_) == 0) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
    }
    void commit()
    {
        exec(db_, "COMMIT");
        done_ = true;
    }

  private:
    sqlite3* db_;
    bool done_ = false;
};

// One writer call inside a batch's transaction: SAVEPOINT ... RELEASE, so a failing call undoes
// only itself. Rolls back to the savepoint when left without release (error or exception).
class savepoint {
  public:
    explicit savepoint(connection& db) : connection_{db}
    {
        // SQLite rolls a whole transaction back by itself after some errors (disk full, I/O):
        // then the batch is lost, and this call must not go on and commit on its own.
        if (sqlite3_get_autocommit(db.handle()) != 0) {
            throw sqlite_failure{"the batch's transaction was rolled back by an earlier error"};
        }
        // Prepared once per connection and kept: every writer call opens one, so parsing the
        // SQL each time was a measurable share of a batch.
        statement{connection_, "SAVEPOINT write_call"}.run();
    }
    savepoint(const savepoint&) = delete;
    savepoint& operator=(const savepoint&) = delete;
    ~savepoint()
    {
        auto* db = connection_.handle();
        if (done_ || sqlite3_get_autocommit(db) != 0) {
            return;
        }
        // As in transaction: when the rollback fails too there is nothing better to do.
        sqlite3_exec(db, "ROLLBACK TO write_call; RELEASE write_call", nullptr, nullptr, nullptr);
    }
    void release()
    {
        statement{connection_, "RELEASE write_call"}.run();
        done_ = true;
    }

  private:
    connection& connection_;
    bool done_ = false;
};

// The schema version of the database (PRAGMA user_version).
int user_version(connection& db);

// The text a PRAGMA returns.
std::string pragma_text(connection& db, const char* sql);

// A LIMIT value from a size.
std::int64_t clamp_limit(std::size_t limit);

// The WHERE clause shared by the list_* calls: ?1 serial number or NULL, ?2 after id, ?3 limit.
constexpr std::string_view list_filter =
    "WHERE (?1 IS NULL OR serial_number = ?1) AND id > ?2 ORDER BY id LIMIT ?3";

// Runs a list query: `read` turns each row into an item.
template <class Item, class Read>
std::vector<Item> list(connection& db, std::string_view columns, std::string_view table,
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
connection connect(const std::filesystem::path& file, int flags, std::chrono::milliseconds busy);

// Runs `body(db)` on `db` (the caller holds its mutex); a SQLite failure becomes a storage_error
// naming `operation`.
template <class T, class Body>
storage_result<T> run_on(connection& db, std::string_view operation, Body&& body)
{
    if (!db) {
        return storage_error{fmt::format("{}: the storage is closed", operation)};
    }
    try {
        return storage_result<T>{body(db)};
    } catch (const sqlite_failure& failure) {
        return storage_error{fmt::format("{}: {}", operation, failure.message)};
    }
}

// A connection several threads use, and the mutex that serialises its use (recursive: a call
// made while the same thread holds it, e.g. from inside a write batch, fails as a value instead
// of deadlocking).
struct shared_connection {
    std::recursive_mutex mutex;
    connection db; // empty once closed

    // Runs `body(db)` under the mutex, as run_on.
    template <class T, class Body>
    storage_result<T> run(std::string_view operation, Body&& body)
    {
        std::lock_guard lock{mutex};
        return run_on<T>(db, operation, std::forward<Body>(body));
    }
};

} // namespace adms::server::sqlite
