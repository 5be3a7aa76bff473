#pragma once

#include "server/storage/punch_store.hpp"

#include <string_view>

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The punches, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_punch_store final : public punch_store {
  public:
    explicit sqlite_punch_store(sqlite::shared_connection& reader) : reader_{reader} {}

    // With several serial numbers the list is bound one parameter each: SQLite's limit on bound
    // parameters (32766 by default) caps its length, and a longer list is an error value.
    storage_result<std::vector<stored_punch>> query_punches(const punch_filter& filter) override;
    storage_result<std::int64_t> last_punch_id() override;

    // Test support: stored punches, oldest first.
    storage_result<std::vector<stored_punch>> list_punches(const list_query& query);

  private:
    sqlite::shared_connection& reader_;
};

// The punch writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_punch_writer final : public punch_writer {
  public:
    explicit sqlite_punch_writer(sqlite::connection& db) : db_{db} {}

    storage_result<punch_counts> store_punches(std::string_view serial_number,
                                               std::span<const punch_input> punches,
                                               instant received_at, bool quarantined) override;
    storage_result<std::vector<stored_punch>>
    release_quarantine(std::string_view serial_number) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
