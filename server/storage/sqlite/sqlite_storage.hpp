#pragma once

#include "server/storage/storage.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

struct sqlite3;

namespace adms::server {

// How sqlite_storage::open opens its file.
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

// The storage on one SQLite file: WAL journal, synchronous=FULL (a commit is on disk when the
// call returns), foreign keys on. The schema is versioned with PRAGMA user_version; open applies
// the missing migrations in order, each in its own transaction.
// Two connections to the file: the writer serves every write, the reader
// (read-only, opened after the migrations) serves the pure reads. Under WAL a read never waits
// for a write transaction, another process's included, and sees only committed data; each read
// call sees one snapshot.
// Thread safety: any thread may call; each connection has its own mutex, so writes are
// serialised among themselves, reads among themselves, and a read runs alongside a write.
class sqlite_storage final : public storage {
  public:
    // The schema version this build creates and expects.
    static constexpr int schema_version = 3;

    // The SQL that takes the schema from `from_version` to `from_version + 1` (empty for any
    // other version): lets a test build an older database.
    static std::string_view migration_sql(int from_version);

    // Opens (or creates) the database file at `file`; its directory must exist. Fails as a value
    // for a file that is not a database, a schema newer than this build, or no access.
    static storage_result<std::unique_ptr<sqlite_storage>>
    open(const std::filesystem::path& file, const sqlite_open_options& options = {});

    sqlite_storage(const sqlite_storage&) = delete;
    sqlite_storage& operator=(const sqlite_storage&) = delete;
    // Closes the connections if close() was not called (an error closing is then not reported).
    ~sqlite_storage() override;

    storage_result<device_record> upsert_device(const device_record& device) override;
    storage_result<std::optional<device_record>>
    load_device(std::string_view serial_number) override;
    storage_result<std::vector<device_record>> load_devices() override;
    storage_result<std::size_t> store_device_options(std::string_view serial_number,
                                                     std::span<const protocol::key_value> options,
                                                     instant received_at) override;

    storage_result<store_counts> store_punches(std::string_view serial_number,
                                               std::span<const punch_input> punches,
                                               instant received_at, bool quarantined) override;
    storage_result<std::vector<stored_punch>> list_punches(const list_query& query) override;
    storage_result<std::vector<stored_punch>> query_punches(const punch_filter& filter) override;
    storage_result<std::int64_t> last_punch_id() override;
    storage_result<std::size_t> release_quarantine(std::string_view serial_number) override;

    storage_result<store_counts>
    store_rejected_lines(std::string_view serial_number, std::string_view table,
                         std::span<const protocol::rejected_line> lines,
                         instant received_at) override;
    storage_result<std::vector<stored_rejected_line>>
    list_rejected_lines(const list_query& query) override;

    storage_result<store_counts> store_operlog(std::string_view serial_number,
                                               std::span<const protocol::operlog_record> lines,
                                               instant received_at) override;
    storage_result<std::vector<stored_operlog_line>> list_operlog(const list_query& query) override;
    storage_result<std::vector<stored_user>> list_users(std::string_view serial_number) override;

    storage_result<std::int64_t> store_table_body(std::string_view serial_number,
                                                  std::string_view table, std::string_view body,
                                                  instant received_at) override;
    storage_result<std::vector<stored_table_body>>
    list_table_bodies(const list_query& query) override;

    storage_result<store_counts> store_photo(std::string_view serial_number,
                                             std::string_view file_name, std::string_view bytes,
                                             instant received_at) override;
    storage_result<std::vector<stored_photo>> list_photos(const list_query& query) override;

    storage_result<std::string> enqueue_command(std::string_view serial_number,
                                                std::string_view text, std::string_view kind,
                                                instant created_at) override;
    storage_result<enqueued_command> enqueue_command_unless_pending(std::string_view serial_number,
                                                                    std::string_view text,
                                                                    std::string_view kind,
                                                                    std::string_view kind_prefix,
                                                                    instant created_at) override;
    storage_result<std::optional<queued_command>> find_command(std::string_view serial_number,
                                                               std::string_view id) override;
    storage_result<std::vector<queued_command>>
    claim_commands(std::string_view serial_number, instant now, const resend_policy& policy,
                   const command_chooser& choose) override;
    storage_status set_command_text(std::string_view serial_number, std::string_view id,
                                    std::string_view text) override;
    storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results,
                           instant received_at) override;
    storage_result<std::vector<stored_command_result>>
    list_command_results(const list_query& query) override;
    storage_result<std::vector<queued_command>> list_commands(std::string_view serial_number,
                                                              std::size_t recent = 50) override;

    storage_status store_clock_offsets(std::span<const clock_offset_point> points,
                                       instant keep_after) override;
    storage_result<std::vector<stored_clock_offset>>
    list_clock_offsets(const clock_offset_query& query) override;
    storage_status write_batch(const std::function<void()>& work) override;
    storage_status check() override;
    storage_status probe() override;
    storage_status close() override;

    // Why writes fail because open() fell back to reading only (read_only_fallback); empty when
    // the store is writable.
    std::string read_only_reason();

  private:
    // One SQLite connection and the mutex that serialises its use (recursive: the write calls of
    // a write_batch run on the thread that holds it).
    struct connection {
        std::recursive_mutex mutex;
        sqlite3* db = nullptr; // null once closed
    };

    sqlite_storage(std::filesystem::path file, sqlite_open_options options);

    static sqlite3* open_writer(const std::filesystem::path& file,
                                const sqlite_open_options& options);
    static sqlite3* open_reader(const std::filesystem::path& file,
                                const sqlite_open_options& options, bool immutable);
    static storage_result<std::unique_ptr<sqlite_storage>>
    open_degraded(std::unique_ptr<sqlite_storage> self, std::string why);
    // Reopens the writer (and a reader that sees the WAL) after a read-only fallback; the caller
    // holds writer_.mutex. False while it still cannot write (read_only_reason_ says why).
    bool try_reopen_writer();

    // Runs `body(db)` on the writer under its mutex; a SQLite failure becomes a storage_error
    // naming `operation`.
    template <class T, class Body>
    storage_result<T> run(std::string_view operation, Body&& body);
    // The same on the read connection.
    template <class T, class Body>
    storage_result<T> read(std::string_view operation, Body&& body);

    std::filesystem::path file_;
    sqlite_open_options options_;
    connection writer_; // null when read_only_reason_ is set (and after close)
    connection reader_; // opened last by open(); read-only
    // Guarded by writer_.mutex.
    std::string read_only_reason_;
    std::chrono::steady_clock::time_point next_reopen_{};
};

} // namespace adms::server
