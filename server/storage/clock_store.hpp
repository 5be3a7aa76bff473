#pragma once

#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

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

} // namespace adms::server
