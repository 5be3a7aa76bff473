#pragma once

#include "server/storage/upload_store.hpp"

#include <string_view>
#include <vector>

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// Test support: reads back what devices uploaded, on the database's read connection (no
// interface offers these reads yet).
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_upload_store {
  public:
    explicit sqlite_upload_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<stored_rejected_line>> list_rejected_lines(const list_query& query);
    storage_result<std::vector<stored_operlog_line>> list_operlog(const list_query& query);
    // A device's users, ordered by PIN.
    storage_result<std::vector<stored_user>> list_users(std::string_view serial_number);
    storage_result<std::vector<stored_table_body>> list_table_bodies(const list_query& query);
    storage_result<std::vector<stored_photo>> list_photos(const list_query& query);

  private:
    sqlite::shared_connection& reader_;
};

// The upload writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_upload_writer final : public upload_writer {
  public:
    explicit sqlite_upload_writer(sqlite::connection& db) : db_{db} {}

    storage_result<store_counts>
    store_rejected_lines(std::string_view serial_number, std::string_view table,
                         std::span<const protocol::rejected_line> lines,
                         instant received_at) override;
    storage_result<store_counts> store_operlog(std::string_view serial_number,
                                               std::span<const protocol::operlog_record> lines,
                                               instant received_at) override;
    storage_result<std::int64_t> store_table_body(std::string_view serial_number,
                                                  std::string_view table, std::string_view body,
                                                  instant received_at) override;
    storage_result<store_counts> store_photo(std::string_view serial_number,
                                             std::string_view file_name, std::string_view bytes,
                                             instant received_at) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
