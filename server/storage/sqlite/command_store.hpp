#pragma once

#include "server/storage/command_store.hpp"

#include <string_view>
#include <vector>

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The command queue, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_command_store final : public command_store {
  public:
    explicit sqlite_command_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::optional<queued_command>> find_command(std::string_view serial_number,
                                                               std::string_view id) override;
    storage_result<std::vector<queued_command>> list_commands(std::string_view serial_number,
                                                              std::size_t recent = 50) override;

    // Test support: the logged devicecmd results, oldest first.
    storage_result<std::vector<stored_command_result>>
    list_command_results(const list_query& query);

  private:
    sqlite::shared_connection& reader_;
};

// The command writes of one batch, on the writer connection inside its transaction (which holds
// SQLite's write lock: no other connection can queue or claim in between).
// Thread safety: only on the thread running the batch.
class sqlite_command_writer final : public command_writer {
  public:
    explicit sqlite_command_writer(sqlite::connection& db) : db_{db} {}

    storage_result<std::string> enqueue_command(std::string_view serial_number,
                                                std::string_view text, std::string_view kind,
                                                instant created_at) override;
    storage_result<enqueued_command> enqueue_command_unless_pending(std::string_view serial_number,
                                                                    std::string_view text,
                                                                    std::string_view kind,
                                                                    std::string_view kind_prefix,
                                                                    instant created_at) override;
    storage_result<std::vector<queued_command>>
    claim_commands(std::string_view serial_number, instant now, const resend_policy& policy,
                   const command_chooser& choose) override;
    storage_status set_command_text(std::string_view serial_number, std::string_view id,
                                    std::string_view text) override;
    storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results,
                           instant received_at) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
