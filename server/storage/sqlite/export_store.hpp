#pragma once

#include "server/storage/export_store.hpp"

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The exports' state, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_export_store final : public export_store {
  public:
    explicit sqlite_export_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<export_state>> list_export_states() override;

  private:
    sqlite::shared_connection& reader_;
};

// The export writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_export_writer final : public export_writer {
  public:
    explicit sqlite_export_writer(sqlite::connection& db) : db_{db} {}

    storage_status record_export_run(const export_run& run) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
