#pragma once

#include "server/storage/database.hpp"
#include "server/storage/sqlite/clock_store.hpp"
#include "server/storage/sqlite/command_store.hpp"
#include "server/storage/sqlite/device_store.hpp"
#include "server/storage/sqlite/export_store.hpp"
#include "server/storage/sqlite/outbox_store.hpp"
#include "server/storage/sqlite/person_store.hpp"
#include "server/storage/sqlite/provision_store.hpp"
#include "server/storage/sqlite/punch_store.hpp"
#include "server/storage/sqlite/upload_store.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace adms::server {

namespace sqlite {
struct shared_connection;
} // namespace sqlite

// How sqlite_database::open opens its file.
struct sqlite_open_options {
    // Opens without write access: no file is created, no migration runs (an older schema is an
    // error), and every write returns a storage_error. For tools and tests.
    bool read_only = false;
    // How long a call waits for a lock another connection holds before failing with "locked".
    std::chrono::milliseconds busy_timeout{5000};
    // When the file exists but cannot be opened for writing (a read-only file system or
    // directory): open it for reads only instead of failing. Every write then tries to reopen
    // for writing (at most once a second) and returns a storage_error until that works, so the
    // server recovers by itself when the file system becomes writable.
    bool read_only_fallback = false;
};

// The database on one SQLite file: WAL journal, synchronous=FULL (a commit is on disk when the
// call returns), foreign keys on. The schema is versioned with PRAGMA user_version; open applies
// the missing migrations in order, each in its own transaction.
// Two connections to the file: the writer serves the write batches, the reader (read-only,
// opened after the migrations) serves the stores' reads. Under WAL a read never waits for a
// write transaction, another process's included, and sees only committed data; each read call
// sees one snapshot. Each store's SQL is in its own file (device_store.cpp, ...); a batch's
// writer views live on the stack of write_batch, bound to the writer connection.
// The stores' accessors return the SQLite types, which add test-support reads (list_punches,
// load_device, uploads(), ...) that no interface offers.
// Thread safety: any thread may call; each connection has its own mutex, so batches are
// serialised among themselves, reads among themselves, and a read runs alongside a batch.
class sqlite_database final : public database {
  public:
    // The schema version this build creates and expects.
    static constexpr int schema_version = 7;

    // The SQL that takes the schema from `from_version` to `from_version + 1` (empty for any
    // other version): lets a test build an older database.
    static std::string_view migration_sql(int from_version);

    // Opens (or creates) the database file at `file`; its directory must exist. Fails as a value
    // for a file that is not a database, a schema newer than this build, or no access.
    static storage_result<std::unique_ptr<sqlite_database>>
    open(const std::filesystem::path& file, const sqlite_open_options& options = {});

    sqlite_database(const sqlite_database&) = delete;
    sqlite_database& operator=(const sqlite_database&) = delete;
    // Closes the connections if close() was not called (an error closing is then not reported).
    ~sqlite_database() override;

    sqlite_device_store& devices() override { return devices_; }
    sqlite_punch_store& punches() override { return punches_; }
    // Test support: reads back what devices uploaded.
    sqlite_upload_store& uploads() { return uploads_; }
    sqlite_command_store& commands() override { return commands_; }
    sqlite_clock_store& clocks() override { return clocks_; }
    sqlite_outbox_store& outbox() override { return outbox_; }
    sqlite_export_store& exports() override { return exports_; }
    sqlite_person_store& persons() override { return persons_; }
    sqlite_provision_store& provisioning() override { return provisioning_; }

    storage_status write_batch(const std::function<void(write_tx& tx)>& work) override;
    storage_status check() override;
    storage_status close() override;

    // Why writes fail because open() fell back to reading only (read_only_fallback); empty when
    // the database is writable.
    std::string read_only_reason();

  private:
    sqlite_database(std::filesystem::path file, sqlite_open_options options);

    static storage_result<std::unique_ptr<sqlite_database>>
    open_degraded(std::unique_ptr<sqlite_database> self, std::string why);
    // Reopens the writer (and a reader that sees the WAL) after a read-only fallback; the caller
    // holds writer_->mutex. False while it still cannot write (read_only_reason_ says why).
    bool try_reopen_writer();

    std::filesystem::path file_;
    sqlite_open_options options_;
    // Behind pointers so that this header needs no SQLite: sqlite_db.hpp is internal.
    std::unique_ptr<sqlite::shared_connection> writer_; // empty when read_only_reason_ is set
    std::unique_ptr<sqlite::shared_connection> reader_; // opened last by open(); read-only
    sqlite_device_store devices_;
    sqlite_punch_store punches_;
    sqlite_upload_store uploads_;
    sqlite_command_store commands_;
    sqlite_clock_store clocks_;
    sqlite_outbox_store outbox_;
    sqlite_export_store exports_;
    sqlite_person_store persons_;
    sqlite_provision_store provisioning_;
    // Guarded by writer_->mutex.
    std::string read_only_reason_;
    std::chrono::steady_clock::time_point next_reopen_{};
};

} // namespace adms::server
