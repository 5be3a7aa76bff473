#pragma once

#include "server/storage/person_store.hpp"

namespace adms::server {

namespace sqlite {
class connection;
struct shared_connection;
} // namespace sqlite

// The people directory, read on the database's read connection.
// Thread safety: any thread may call; the connection's mutex serialises the reads.
class sqlite_person_store final : public person_store {
  public:
    explicit sqlite_person_store(sqlite::shared_connection& reader) : reader_{reader} {}

    storage_result<std::optional<stored_person>> find_person(std::string_view pin) override;
    storage_result<std::vector<stored_person>> list_persons(const person_query& query) override;
    storage_result<std::vector<stored_area>> list_areas() override;
    storage_result<std::optional<stored_area>> find_area(std::string_view code) override;
    storage_result<std::vector<person_template>> templates_of(std::string_view pin,
                                                              bool with_data) override;

  private:
    sqlite::shared_connection& reader_;
};

// The directory writes of one batch, on the writer connection inside its transaction.
// Thread safety: only on the thread running the batch.
class sqlite_person_writer final : public person_writer {
  public:
    explicit sqlite_person_writer(sqlite::connection& db) : db_{db} {}

    storage_result<std::optional<stored_person>> find_person(std::string_view pin) override;
    storage_result<std::vector<std::string>>
    unknown_areas(const std::vector<std::string>& codes) override;
    storage_result<person_saved> save_person(const personnel::person& p, instant at) override;
    storage_result<bool> delete_person(std::string_view pin) override;
    storage_result<bool> save_area(const personnel::area& a) override;
    storage_result<bool> delete_area(std::string_view code) override;
    storage_result<template_saved> store_template(const person_template& t) override;
    storage_result<std::size_t> delete_templates(std::string_view pin,
                                                 std::optional<int> type) override;

  private:
    sqlite::connection& db_;
};

} // namespace adms::server
