#pragma once

#include "server/storage/clock_store.hpp"

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The drift watch's offsets, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_clock_store final : public clock_store {
  public:
    explicit sqlite_clock_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<stored_clock_offset>>
    list_clock_offsets(const clock_offset_query& query) override;

  private:
    sqlite::shared_connection& reader_;
};

// The offset writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_clock_writer final : public clock_writer {
  public:
    explicit sqlite_clock_writer(sqlite::connection& db) : db_{db} {}

    storage_status store_clock_offsets(std::span<const clock_offset_point> points,
                                       instant keep_after) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
