#pragma once

#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/temp_dir.hpp"
#include "tests/unit/server/storage/contract/backend_factory.hpp"

#include <filesystem>
#include <optional>

namespace adms::storage_test {

// The SQLite backend for the contract suite: each make() is a new file in a temporary directory,
// reopen() opens that file again, and the test-support reads are sqlite_database's own.
class sqlite_backend final : public backend_factory {
  public:
    std::unique_ptr<database> make() override;
    std::unique_ptr<database> reopen() override;
    bool inject_commit_failure() override;

    storage_result<std::optional<device_record>>
    load_device(database& db, std::string_view serial_number) override;
    storage_result<std::vector<stored_punch>> list_punches(database& db,
                                                           const list_query& query) override;
    storage_result<std::vector<stored_rejected_line>>
    list_rejected_lines(database& db, const list_query& query) override;
    storage_result<std::vector<stored_operlog_line>> list_operlog(database& db,
                                                                  const list_query& query) override;
    storage_result<std::vector<stored_user>> list_users(database& db,
                                                        std::string_view serial_number) override;
    storage_result<std::vector<stored_table_body>>
    list_table_bodies(database& db, const list_query& query) override;
    storage_result<std::vector<stored_photo>> list_photos(database& db,
                                                          const list_query& query) override;
    storage_result<std::vector<stored_command_result>>
    list_command_results(database& db, const list_query& query) override;

  private:
    std::optional<adms::test::temp_dir> dir_; // made at the first make()
    int files_ = 0;
    std::filesystem::path file_; // the last make()'s
};

// The test-support reads of sqlite databases opened outside a factory (the SQLite-only cases).
backend_factory& sqlite_reads();

} // namespace adms::storage_test
