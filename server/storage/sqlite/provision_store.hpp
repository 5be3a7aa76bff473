#pragma once

#include "server/storage/provision_store.hpp"

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The provisioning state, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_provision_store final : public provision_store {
  public:
    explicit sqlite_provision_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::vector<provision_item>> items_of(std::string_view serial_number) override;
    storage_result<std::vector<protocol::user_info>>
    device_users(std::string_view serial_number) override;
    storage_result<std::vector<device_template>>
    device_templates(std::string_view serial_number) override;

  private:
    sqlite::shared_connection& reader_;
};

// The provisioning writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_provision_writer final : public provision_writer {
  public:
    explicit sqlite_provision_writer(sqlite::connection& db) : db_{db} {}

    storage_status record_item(const provision_item& item) override;
    storage_status forget_device(std::string_view serial_number) override;
    storage_status store_device_template(const device_template& t) override;
    storage_status forget_device_user(std::string_view serial_number,
                                      std::string_view pin) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
