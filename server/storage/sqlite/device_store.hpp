#pragma once

#include "server/storage/device_store.hpp"

#include <optional>
#include <string_view>

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The device rows, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_device_store final : public device_store {
  public:
    explicit sqlite_device_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<device_record>> load_devices() override;

    // Test support: one device with its options; nullopt inside the result when unknown.
    storage_result<std::optional<device_record>> load_device(std::string_view serial_number);

  private:
    sqlite::shared_connection& reader_;
};

// The device writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_device_writer final : public device_writer {
  public:
    explicit sqlite_device_writer(sqlite::connection& db) : db_{db} {}

    storage_result<device_record> upsert_device(const device_record& device) override;
    storage_result<std::size_t> store_device_options(std::string_view serial_number,
                                                     std::span<const protocol::key_value> options,
                                                     instant received_at) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
