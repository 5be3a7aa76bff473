#pragma once

#include "server/personnel/person.hpp"
#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

// A person as stored: the directory's person and when it last changed.
struct stored_person {
    personnel::person person;
    instant updated_at{};
    friend bool operator==(const stored_person&, const stored_person&) = default;
};

// Which persons a listing returns, ordered by PIN.
struct person_query {
    std::optional<std::string> area{};                // only persons in this area
    std::optional<personnel::person_status> status{}; // only persons with this status
    std::optional<personnel::person_source> source{}; // only persons from this source
    std::optional<std::string> after{};               // cursor: PINs greater than this one
    std::size_t limit = 100;                          // at most this many (capped at 1000)
};

// An area with how many devices and persons it has.
struct stored_area {
    personnel::area area;
    std::size_t devices = 0; // devices assigned to it
    std::size_t persons = 0; // persons (active or not) listing it
    friend bool operator==(const stored_area&, const stored_area&) = default;
};

// What save_person did.
enum class person_saved { created, updated, unchanged };

// One biometric template of a person, as a device uploaded it. Several algorithm versions of
// one finger or face are kept side by side: the key is (pin, type, no, index, major, minor,
// format), and a template of another version never replaces it.
struct person_template {
    std::string pin;
    int type = 1;  // 1 fingerprint, 2 NIR face, 7 finger vein, 8 palm, 9 visible face, ...
    int no = 0;    // finger 0-9; face 0; ...
    int index = 0; // n-th template of that body part
    int major = 0; // algorithm version, e.g. 10.0, 13.0, 40.1
    int minor = 0;
    int format = 0; // 0 ZK, 1 ISO, 2 ANSI
    int valid = 1;
    bool duress = false;
    std::string data; // base64 as the device sent it (listings leave it empty)
    // A FACE upload's 16 leading bytes are in `data` (protocol::biometric_template says why).
    bool face_upload_prefix = false;
    std::string sha256; // of `data`, lower-case hex
    std::string source_serial_number;
    instant captured_at{};
    friend bool operator==(const person_template&, const person_template&) = default;
};

// What store_template did.
enum class template_saved { created, replaced, unchanged };

// Reads of the people directory (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class person_store {
  public:
    virtual storage_result<std::optional<stored_person>> find_person(std::string_view pin) = 0;
    virtual storage_result<std::vector<stored_person>> list_persons(const person_query& query) = 0;
    virtual storage_result<std::vector<stored_area>> list_areas() = 0;
    virtual storage_result<std::optional<stored_area>> find_area(std::string_view code) = 0;
    // A person's templates, ordered by key; `with_data` false leaves `data` empty (listings).
    virtual storage_result<std::vector<person_template>> templates_of(std::string_view pin,
                                                                      bool with_data) = 0;

  protected:
    ~person_store() = default;
};

// Writes of the people directory; reached only through a write_tx (database.hpp).
class person_writer {
  public:
    // Reads inside the batch (sees what the batch wrote): for read-modify-write.
    virtual storage_result<std::optional<stored_person>> find_person(std::string_view pin) = 0;
    // The codes in `codes` no area has (inside the batch: sees the batch's own areas).
    virtual storage_result<std::vector<std::string>>
    unknown_areas(const std::vector<std::string>& codes) = 0;
    // Creates or replaces a person by PIN, areas included. Every listed area must exist.
    // `unchanged` when the stored person already equals `p` (updated_at then stays).
    virtual storage_result<person_saved> save_person(const personnel::person& p, instant at) = 0;
    // Deletes a person with their areas and templates; false when there was none.
    virtual storage_result<bool> delete_person(std::string_view pin) = 0;
    // Creates or renames an area; true when it was created.
    virtual storage_result<bool> save_area(const personnel::area& a) = 0;
    // Deletes an area and takes it off every person. An area a device is assigned to is an
    // error (the device must be moved first); false when there was none.
    virtual storage_result<bool> delete_area(std::string_view code) = 0;
    // Stores a template under its key (see person_template).
    virtual storage_result<template_saved> store_template(const person_template& t) = 0;
    // Deletes a person's templates of one type (every type when nullopt); returns how many.
    virtual storage_result<std::size_t> delete_templates(std::string_view pin,
                                                         std::optional<int> type) = 0;

  protected:
    ~person_writer() = default;
};

} // namespace adms::server
