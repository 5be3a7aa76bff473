#pragma once

#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace adms::server {

// One estimate of a device's clock offset, as the drift watch records it.
struct clock_offset_point {
    std::string serial_number;
    instant measured_at{};           // when the evidence was taken (sync sent, punch received)
    std::int64_t offset_ms = 0;      // device clock - server clock
    std::int64_t uncertainty_ms = 0; // ± around offset_ms
    std::string source;              // "sync" or "punches"
};

// A recorded offset with its id (increasing: a cursor).
struct stored_clock_offset {
    std::int64_t id = 0;
    clock_offset_point point;
};

// Which offsets list_clock_offsets returns: one device's, measured in [from, to), with id >
// after_id, in recording order.
struct clock_offset_query {
    std::string serial_number;
    std::optional<instant> from = std::nullopt;
    std::optional<instant> to = std::nullopt;
    std::int64_t after_id = 0;
    std::size_t limit = 1000;
};

// Reads of the drift watch's offset history (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class clock_store {
  public:
    // A device's recorded offsets in the order they were recorded (by id).
    virtual storage_result<std::vector<stored_clock_offset>>
    list_clock_offsets(const clock_offset_query& query) = 0;

  protected:
    ~clock_store() = default;
};

// Writes of the offset history; reached only through a write_tx (database.hpp).
class clock_writer {
  public:
    // Appends drift-watch points and deletes each listed device's points measured before
    // `keep_after`, all or nothing.
    virtual storage_status store_clock_offsets(std::span<const clock_offset_point> points,
                                               instant keep_after) = 0;

  protected:
    ~clock_writer() = default;
};

} // namespace adms::server
