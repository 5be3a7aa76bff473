#pragma once

#include "server/records/punch_format.hpp"
#include "server/storage/export_store.hpp"
#include "server/storage/punch_store.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// The file name of a day's export: "punches-YYYY-MM-DD.csv".
std::string day_file_name(std::chrono::local_days day);
// Whether `name` is a day file's name (so only our own temporaries are ever removed).
bool is_day_file_name(std::string_view name);

// What write_day_file did: the file in place, or why not.
struct day_file_result {
    std::optional<export_run> run; // name, day, file, rows, bytes and finished_at set
    bool storage_failed = false;   // a read failed
    bool cancelled = false;        // given up: the server is stopping
    std::string error;             // else the file could not be written
};

// Writes the punches of the devices' wall-clock day `day` to `directory`/punches-<day>.csv:
// exactly the bytes GET /punches.csv?from=<day>&to=<day> answers (the same filter, the same
// pages, the same rows), through an atomic_file, page by page so a day never sits in memory.
// Blocking (storage reads, writes, fsync): run it off the I/O threads. Gives up, removing its
// temporary, when `cancelled` turns true (the server is stopping).
day_file_result write_day_file(punch_store& punches, const std::filesystem::path& directory,
                               std::chrono::local_days day, const device_lookup& device_of,
                               const std::atomic<bool>& cancelled);

} // namespace adms::server
