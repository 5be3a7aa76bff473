#pragma once

#include "server/storage/outbox_store.hpp"

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The outbox, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_outbox_store final : public outbox_store {
  public:
    explicit sqlite_outbox_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<webhook_endpoint_row>> endpoints() override;
    storage_result<std::vector<webhook_delivery>>
    list_deliveries(const delivery_filter& filter) override;
    storage_result<std::vector<lane_head>> pending_lanes(std::string_view endpoint) override;
    storage_result<std::optional<webhook_delivery>>
    find_delivery(std::string_view endpoint, std::string_view event_id) override;
    storage_result<std::vector<delivery_attempt>> attempts(std::string_view endpoint,
                                                           std::int64_t seq) override;
    storage_result<delivery_summary> summary(std::string_view endpoint) override;

  private:
    sqlite::shared_connection& reader_;
};

// The outbox writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_outbox_writer final : public outbox_writer {
  public:
    explicit sqlite_outbox_writer(sqlite::connection& db) : db_{db} {}

    storage_status append_events(std::span<outbox_event> events,
                                 std::span<const std::vector<std::string>> endpoints) override;
    storage_status record_attempt(std::string_view endpoint, std::int64_t seq,
                                  const attempt_record& record) override;
    storage_result<std::size_t> requeue(const requeue_range& range, instant due) override;
    storage_status save_endpoint(const webhook_endpoint_row& endpoint) override;
    storage_result<bool> delete_endpoint(std::string_view name) override;
    storage_result<pruned_count> prune(instant before, std::size_t limit) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
