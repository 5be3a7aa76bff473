#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

// The value types every store speaks: results and errors, and the server clock reading.
//
// Times: `instant` is a server clock reading (UTC, milliseconds), stored as INTEGER Unix ms. A
// punch's UTC instant is `std::chrono::sys_seconds`, stored as INTEGER Unix seconds. A device's
// wall-clock time is kept as TEXT "YYYY-MM-DD HH:MM:SS", never converted.
namespace adms::server {

// A server clock reading (UTC).
using instant = std::chrono::sys_time<std::chrono::milliseconds>;

// An expected storage failure (disk full, read-only, locked, corrupt, closed): the caller answers
// 503 and does not acknowledge. Never thrown.
struct storage_error {
    std::string message; // operation and SQLite's message, e.g. "store_punches: disk is full"
};

// Either a value or the error that prevented it.
template <class T>
struct storage_result {
    std::optional<T> value;
    storage_error error; // meaningful only when `value` is empty

    storage_result(T v) : value{std::move(v)} {}
    storage_result(storage_error e) : error{std::move(e)} {}
    explicit operator bool() const { return value.has_value(); }
};

// The result of an operation that returns nothing but success.
using storage_status = storage_result<std::monostate>;

// How many items of a batch were new and how many were already stored.
struct store_counts {
    std::size_t stored = 0;
    std::size_t duplicate = 0;
    friend bool operator==(const store_counts&, const store_counts&) = default;
};

// Which stored items a list call returns: oldest first, ids greater than `after_id`.
struct list_query {
    std::optional<std::string> serial_number = std::nullopt; // nullopt: every device
    std::int64_t after_id = 0;
    std::size_t limit = 1000;
};

} // namespace adms::server
