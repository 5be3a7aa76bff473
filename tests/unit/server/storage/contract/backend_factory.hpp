#pragma once

#include "server/storage/database.hpp"

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace adms::storage_test {

using namespace adms::server;

// A storage backend under test. The contract suite (this folder) is the behaviour every backend
// must have; it reaches the backend only through the abstract interfaces (database.hpp) and this
// factory. Each backend's test executable defines make_backend_factory().
class backend_factory {
  public:
    virtual ~backend_factory() = default;

    // A database on fresh, empty storage.
    virtual std::unique_ptr<database> make() = 0;
    // Another database on the storage of the last make(), which may still be open, or closed.
    virtual std::unique_ptr<database> reopen() = 0;
    // Makes the commit of every later batch that stored a punch fail, as a full disk would;
    // false when this backend cannot.
    virtual bool inject_commit_failure() = 0;

    // Test support: the reads no interface offers, so the suite can check what was stored. `db`
    // is a database this factory made.
    virtual storage_result<std::optional<device_record>>
    load_device(database& db, std::string_view serial_number) = 0;
    virtual storage_result<std::vector<stored_punch>> list_punches(database& db,
                                                                   const list_query& query) = 0;
    virtual storage_result<std::vector<stored_rejected_line>>
    list_rejected_lines(database& db, const list_query& query) = 0;
    virtual storage_result<std::vector<stored_operlog_line>>
    list_operlog(database& db, const list_query& query) = 0;
    // A device's users, ordered by PIN.
    virtual storage_result<std::vector<stored_user>> list_users(database& db,
                                                                std::string_view serial_number) = 0;
    virtual storage_result<std::vector<stored_table_body>>
    list_table_bodies(database& db, const list_query& query) = 0;
    virtual storage_result<std::vector<stored_photo>> list_photos(database& db,
                                                                  const list_query& query) = 0;
    virtual storage_result<std::vector<stored_command_result>>
    list_command_results(database& db, const list_query& query) = 0;
};

// The backend this test executable runs the contract suite against.
std::unique_ptr<backend_factory> make_backend_factory();

} // namespace adms::storage_test
