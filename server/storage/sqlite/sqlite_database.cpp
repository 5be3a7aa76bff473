#include "server/storage/sqlite/sqlite_database.hpp"

#include "server/storage/sqlite/schema.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

namespace adms::server {

using namespace sqlite;

namespace {

// The write transaction of one batch: a writer view per store, each bound to the writer
// connection, which holds the batch's transaction.
class sqlite_write_tx final : public write_tx {
  public:
    explicit sqlite_write_tx(connection& db)
        : db_{db}, devices_{db}, punches_{db}, uploads_{db}, commands_{db}, clocks_{db}, outbox_{db}
    {
    }

    device_writer& devices() override { return devices_; }
    punch_writer& punches() override { return punches_; }
    upload_writer& uploads() override { return uploads_; }
    command_writer& commands() override { return commands_; }
    clock_writer& clocks() override { return clocks_; }
    outbox_writer& outbox() override { return outbox_; }

    storage_status atomic(const std::function<storage_status()>& work) override
    {
        if (!db_) {
            return storage_error{"atomic: the storage is closed"};
        }
        try {
            savepoint tx{db_};
            auto result = work();
            if (result) {
                tx.release();
            }
            return result; // an error: the savepoint's destructor undoes what work wrote
        } catch (const sqlite_failure& failure) {
            return storage_error{fmt::format("atomic: {}", failure.message)};
        }
    }
    export_writer& exports() override { return exports_; }
    person_writer& persons() override { return persons_; }
    provision_writer& provisioning() override { return provisioning_; }

    storage_status probe() override
    {
        return run_on<std::monostate>(db_, "probe", [](connection& db) {
            // A real durable write of one page (the header): the commit fails like an upload's
            // would when the disk is full, read-only or locked.
            savepoint tx{db};
            exec(db,
                 fmt::format("PRAGMA user_version = {}", sqlite_database::schema_version).c_str());
            tx.release();
            return std::monostate{};
        });
    }

  private:
    connection& db_;
    sqlite_device_writer devices_;
    sqlite_punch_writer punches_;
    sqlite_upload_writer uploads_;
    sqlite_command_writer commands_;
    sqlite_clock_writer clocks_;
    sqlite_outbox_writer outbox_;
    sqlite_export_writer exports_{db_};
    sqlite_person_writer persons_{db_};
    sqlite_provision_writer provisioning_{db_};
};

// Opens the read-write connection and brings it to the current schema: WAL, synchronous=FULL,
// foreign keys, migrations. Throws sqlite_failure (the connection then closes).
connection open_writer(const std::filesystem::path& file, const sqlite_open_options& options)
{
    constexpr int schema_version = sqlite_database::schema_version;
    const int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    connection db = connect(file, flags, options.busy_timeout);
    {
        // Reading the schema version first also rejects a file that is not a database.
        int version = user_version(db);
        if (version > schema_version) {
            throw sqlite_failure{
                fmt::format("schema version {} is newer than this build's {}; use a newer admsd",
                            version, schema_version)};
        }
        // SQLite opens a file it may not write read-only without saying so: say it here, so
        // the caller can fall back to serving reads.
        if (sqlite3_db_readonly(db.handle(), "main") == 1) {
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
        migrate(db, version);
    }
    return db;
}

// Opens the read-only connection. On a read-only file system SQLite cannot create the WAL's
// shared-memory file; `immutable` then reads the database file alone (what was checkpointed).
connection open_reader(const std::filesystem::path& file, const sqlite_open_options& options,
                       bool immutable)
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
std::string why_not_writable(const std::filesystem::path& file, const std::string& sqlite_message)
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

} // namespace

sqlite_database::sqlite_database(std::filesystem::path file, sqlite_open_options options)
    : file_{std::move(file)}, options_{options}, writer_{std::make_unique<shared_connection>()},
      reader_{std::make_unique<shared_connection>()}, devices_{*reader_}, punches_{*reader_},
      uploads_{*reader_}, commands_{*reader_}, clocks_{*reader_}, outbox_{*reader_},
      exports_{*reader_}, persons_{*reader_}, provisioning_{*reader_}
{
}

sqlite_database::~sqlite_database()
{
    close();
}

storage_result<std::unique_ptr<sqlite_database>>
sqlite_database::open(const std::filesystem::path& file, const sqlite_open_options& options)
{
    // From the first connection on the object owns the connections, so every exit closes them.
    std::unique_ptr<sqlite_database> self{new sqlite_database{file, options}};
    try {
        if (options.read_only) {
            self->reader_->db = open_reader(file, options, false);
            int version = user_version(self->reader_->db);
            if (version != schema_version) {
                return storage_error{fmt::format(
                    "open {}: schema version {} is not this build's {}{}", file.string(), version,
                    schema_version,
                    version < schema_version ? "; open it read-write once to migrate" : "")};
            }
            exec(self->reader_->db, "PRAGMA foreign_keys = ON");
            // Writes go to a read-only connection too, so each fails with SQLite's own "attempt
            // to write a readonly database".
            self->writer_->db = open_reader(file, options, false);
            return self;
        }
        try {
            self->writer_->db = open_writer(file, options);
        } catch (const sqlite_failure& failure) {
            std::error_code ec;
            if (!options.read_only_fallback || !std::filesystem::exists(file, ec)) {
                throw;
            }
            return open_degraded(std::move(self), why_not_writable(file, failure.message));
        }
        // After the migrations, so the reader never sees an older schema.
        self->reader_->db = open_reader(file, options, false);
    } catch (const sqlite_failure& failure) {
        return storage_error{fmt::format("open {}: {}", file.string(), failure.message)};
    }
    return self;
}

storage_result<std::unique_ptr<sqlite_database>>
sqlite_database::open_degraded(std::unique_ptr<sqlite_database> self, std::string why)
{
    const auto& file = self->file_;
    std::string first_error;
    for (bool immutable : {false, true}) {
        try {
            self->reader_->db = open_reader(file, self->options_, immutable);
            auto& db = self->reader_->db;
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
            self->reader_->db = connection{}; // closes it
            if (first_error.empty()) {
                first_error = failure.message;
            }
        }
    }
    return storage_error{
        fmt::format("open {}: {}; reading it failed too: {}", file.string(), why, first_error)};
}

std::string sqlite_database::read_only_reason()
{
    std::lock_guard lock{writer_->mutex};
    return !writer_->db ? read_only_reason_ : std::string{};
}

bool sqlite_database::try_reopen_writer()
{
    // Caller holds writer_->mutex. At most one attempt a second: each may wait busy_timeout.
    auto now = std::chrono::steady_clock::now();
    if (now < next_reopen_) {
        return false;
    }
    next_reopen_ = now + std::chrono::seconds{1};
    try {
        connection writer = open_writer(file_, options_);
        connection reader = open_reader(file_, options_, false);
        writer_->db = std::move(writer);
        std::lock_guard lock{reader_->mutex};
        // The immutable reader ignored the WAL: the new one sees every committed write.
        reader_->db = std::move(reader);
        read_only_reason_.clear();
        return true;
    } catch (const sqlite_failure& failure) {
        read_only_reason_ = failure.message;
        return false;
    }
}

storage_status sqlite_database::write_batch(const std::function<void(write_tx& tx)>& work)
{
    std::lock_guard lock{writer_->mutex};
    if (!writer_->db && !read_only_reason_.empty() && !try_reopen_writer()) {
        return storage_error{fmt::format("write batch: read-only: {}", read_only_reason_)};
    }
    sqlite3* db = writer_->db.handle();
    if (db == nullptr) {
        return storage_error{"write batch: the storage is closed"};
    }
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
        return storage_error{fmt::format("write batch: {} (SQLite code {})", sqlite3_errmsg(db),
                                         sqlite3_extended_errcode(db))};
    }
    // The writer calls `work` makes through `tx` are savepoints of this transaction. Should
    // `work` throw after all, the batch is rolled back and the exception goes on.
    struct batch_scope {
        sqlite3* db;
        bool ended = false;
        explicit batch_scope(sqlite3* d) : db{d} {}
        batch_scope(const batch_scope&) = delete;
        batch_scope& operator=(const batch_scope&) = delete;
        ~batch_scope()
        {
            if (!ended && sqlite3_get_autocommit(db) == 0) {
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }
    } scope{db};
    sqlite_write_tx tx{writer_->db};
    work(tx);
    scope.ended = true;
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

storage_status sqlite_database::check()
{
    return reader_->run<std::monostate>("check", [](connection& db) {
        // Reads the schema page, so an unreadable or damaged file fails here.
        statement s{db, "SELECT count(*) FROM sqlite_schema"};
        s.step();
        return std::monostate{};
    });
}

storage_status sqlite_database::close()
{
    std::scoped_lock lock{writer_->mutex, reader_->mutex};
    read_only_reason_.clear(); // closed for good: no reopening
    // Kept statements are finalized first and the others when their call returns, so close
    // cannot be busy. The reader
    // goes first: on the last connection SQLite checkpoints the WAL into the database file and
    // removes it, which the read-only reader could not do.
    for (auto* c : {reader_.get(), writer_.get()}) {
        if (c->db.close() != SQLITE_OK) {
            sqlite3* db = c->db.handle();
            return storage_error{
                fmt::format("close: {} (SQLite code {})", sqlite3_errmsg(db), sqlite3_errcode(db))};
        }
    }
    return std::monostate{};
}

} // namespace adms::server
