#pragma once

#include "tests/unit/server/storage/contract/backend_factory.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace adms::storage_test {

// The storage as single calls, the way one request through the commit queue uses it: each write
// runs in a batch of its own (database::write: the call's result, or the commit's error), reads
// go to the stores, and the reads no interface offers to the backend's test support. The cases
// then read one call per line; the batch cases use write_batch and write_tx directly.
class test_store {
  public:
    test_store(std::unique_ptr<database> db, backend_factory& backend)
        : db_{std::move(db)}, backend_{backend}
    {
    }

    database& db() { return *db_; }

    storage_result<device_record> upsert_device(const device_record& device)
    {
        return db_->write([&](write_tx& tx) { return tx.devices().upsert_device(device); });
    }
    storage_result<std::size_t> store_device_options(std::string_view serial_number,
                                                     std::span<const protocol::key_value> options,
                                                     instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.devices().store_device_options(serial_number, options, received_at);
        });
    }
    storage_result<std::vector<device_record>> load_devices()
    {
        return db_->devices().load_devices();
    }
    storage_result<std::optional<device_record>> load_device(std::string_view serial_number)
    {
        return backend_.load_device(*db_, serial_number);
    }

    storage_result<punch_counts> store_punches(std::string_view serial_number,
                                               std::span<const punch_input> punches,
                                               instant received_at, bool quarantined)
    {
        return db_->write([&](write_tx& tx) {
            return tx.punches().store_punches(serial_number, punches, received_at, quarantined);
        });
    }
    storage_result<std::vector<stored_punch>> release_quarantine(std::string_view serial_number)
    {
        return db_->write(
            [&](write_tx& tx) { return tx.punches().release_quarantine(serial_number); });
    }
    storage_result<std::vector<stored_punch>> query_punches(const punch_filter& filter)
    {
        return db_->punches().query_punches(filter);
    }
    storage_result<std::int64_t> last_punch_id() { return db_->punches().last_punch_id(); }
    storage_result<std::vector<stored_punch>> list_punches(const list_query& query)
    {
        return backend_.list_punches(*db_, query);
    }

    storage_result<store_counts>
    store_rejected_lines(std::string_view serial_number, std::string_view table,
                         std::span<const protocol::rejected_line> lines, instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.uploads().store_rejected_lines(serial_number, table, lines, received_at);
        });
    }
    storage_result<store_counts> store_operlog(std::string_view serial_number,
                                               std::span<const protocol::operlog_record> lines,
                                               instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.uploads().store_operlog(serial_number, lines, received_at);
        });
    }
    storage_result<std::int64_t> store_table_body(std::string_view serial_number,
                                                  std::string_view table, std::string_view body,
                                                  instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.uploads().store_table_body(serial_number, table, body, received_at);
        });
    }
    storage_result<store_counts> store_photo(std::string_view serial_number,
                                             std::string_view file_name, std::string_view bytes,
                                             instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.uploads().store_photo(serial_number, file_name, bytes, received_at);
        });
    }
    storage_result<std::vector<stored_rejected_line>> list_rejected_lines(const list_query& query)
    {
        return backend_.list_rejected_lines(*db_, query);
    }
    storage_result<std::vector<stored_operlog_line>> list_operlog(const list_query& query)
    {
        return backend_.list_operlog(*db_, query);
    }
    storage_result<std::vector<stored_user>> list_users(std::string_view serial_number)
    {
        return backend_.list_users(*db_, serial_number);
    }
    storage_result<std::vector<stored_table_body>> list_table_bodies(const list_query& query)
    {
        return backend_.list_table_bodies(*db_, query);
    }
    storage_result<std::vector<stored_photo>> list_photos(const list_query& query)
    {
        return backend_.list_photos(*db_, query);
    }

    storage_result<std::string> enqueue_command(std::string_view serial_number,
                                                std::string_view text, std::string_view kind,
                                                instant created_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.commands().enqueue_command(serial_number, text, kind, created_at);
        });
    }
    storage_result<enqueued_command> enqueue_command_unless_pending(std::string_view serial_number,
                                                                    std::string_view text,
                                                                    std::string_view kind,
                                                                    std::string_view kind_prefix,
                                                                    instant created_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.commands().enqueue_command_unless_pending(serial_number, text, kind,
                                                                kind_prefix, created_at);
        });
    }
    storage_result<std::vector<queued_command>> claim_commands(std::string_view serial_number,
                                                               instant now,
                                                               const resend_policy& policy,
                                                               const command_chooser& choose)
    {
        return db_->write([&](write_tx& tx) {
            return tx.commands().claim_commands(serial_number, now, policy, choose);
        });
    }
    storage_result<std::vector<result_match>>
    record_command_results(std::string_view serial_number,
                           std::span<const protocol::command_result> results, instant received_at)
    {
        return db_->write([&](write_tx& tx) {
            return tx.commands().record_command_results(serial_number, results, received_at);
        });
    }
    storage_status set_command_text(std::string_view serial_number, std::string_view id,
                                    std::string_view text)
    {
        return db_->write([&](write_tx& tx) -> storage_status {
            return tx.commands().set_command_text(serial_number, id, text);
        });
    }
    storage_result<std::optional<queued_command>> find_command(std::string_view serial_number,
                                                               std::string_view id)
    {
        return db_->commands().find_command(serial_number, id);
    }
    storage_result<std::vector<queued_command>> list_commands(std::string_view serial_number,
                                                              std::size_t recent = 50)
    {
        return db_->commands().list_commands(serial_number, recent);
    }
    storage_result<std::vector<stored_command_result>> list_command_results(const list_query& query)
    {
        return backend_.list_command_results(*db_, query);
    }

    storage_status store_clock_offsets(std::span<const clock_offset_point> points,
                                       instant keep_after)
    {
        return db_->write(
            [&](write_tx& tx) { return tx.clocks().store_clock_offsets(points, keep_after); });
    }
    storage_result<std::vector<stored_clock_offset>>
    list_clock_offsets(const clock_offset_query& query)
    {
        return db_->clocks().list_clock_offsets(query);
    }

    storage_status record_export_run(const export_run& run)
    {
        return db_->write([&](write_tx& tx) { return tx.exports().record_export_run(run); });
    }
    storage_result<std::vector<export_state>> list_export_states()
    {
        return db_->exports().list_export_states();
    }

    storage_status write_batch(const std::function<void(write_tx& tx)>& work)
    {
        return db_->write_batch(work);
    }
    storage_status check() { return db_->check(); }
    storage_status probe() { return db_->probe(); }
    storage_status close() { return db_->close(); }

  private:
    std::unique_ptr<database> db_;
    backend_factory& backend_;
};

} // namespace adms::storage_test
