#pragma once

#include "server/storage.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>

struct sqlite3;

namespace adms::server {

// How sqlite_storage::open opens its file.
struct sqlite_open_options {
    // Opens without write access: no file is created, no migration runs (an older schema is an
    // error), and every write returns a storage_error. For tools and tests.
    bool read_only = false;
    // How long a call waits for a lock another connection holds before failing with "locked".
    std::chrono::milliseconds busy_timeout{5000};
};

// The storage on one SQLite file: WAL journal, synchronous=FULL (a commit is on disk when the
// call returns), foreign keys on. The schema is versioned with PRAGMA user_version; open applies
// the missing migrations in order, each in its own transaction.
// Thread safety: every call takes one mutex around the single connection, so calls from any
// threads are serialised (the server's writer thread and readers share it for now).
class sqlite_storage final : public storage {
  public:
    // The schema version this build creates and expects.
    static constexpr int schema_version = 1;

    // Opens (or creates) the database file at `file`; its directory must exist. Fails as a value
    // for a file that is not a database, a schema newer than this build, or no access.
    static storage_result<std::unique_ptr<sqlite_storage>>
    open(const std::filesystem::path& file, const sqlite_open_options& options = {});

    sqlite_storage(const sqlite_storage&) = delete;
    sqlite_storage& operator=(const sqlite_storage&) = delete;
    // Closes the connection if close() was not called (an error closing is then not reported).
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
    storage_result<std::vector<queued_command>>
    claim_commands(std::string_view serial_number, instant now, const resend_policy& policy,
                   const command_chooser& choose) override;
    storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results,
                           instant received_at) override;
    storage_result<std::vector<stored_command_result>>
    list_command_results(const list_query& query) override;
    storage_result<std::vector<queued_command>> list_commands(std::string_view serial_number,
                                                              std::size_t recent = 50) override;

    storage_status close() override;

  private:
    explicit sqlite_storage(sqlite3* db);

    // Runs `body(db)` under the mutex; a SQLite failure becomes a storage_error naming `operation`.
    template <class T, class Body>
    storage_result<T> run(std::string_view operation, Body&& body);

    std::mutex mutex_;
    sqlite3* db_; // null once closed
};

} // namespace adms::server
