#pragma once

#include "protocol/parse_result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// The longest PIN accepted, in bytes.
inline constexpr std::size_t max_pin_length = 64;

// The longest ATTLOG line accepted, in bytes: real lines are under 200; anything this long is
// not a punch, and refusing it early bounds the work a hostile body can cause.
inline constexpr std::size_t max_attlog_line_length = 4096;

// One punch from an ATTLOG upload.
struct attendance_record {
    std::string pin;                 // as sent: leading zeros kept, letters allowed
    std::chrono::local_seconds time; // the device's wall-clock time
    int status = 0;                  // opaque (0 in, 1 out, ..., 255 seen)
    int verify = 0;                  // opaque (1 fingerprint, 4 card, 15 face, ...)
    std::string work_code;           // often empty; empty when the field is absent
    std::vector<std::string>
        extra_fields; // fields 6 onward as sent (reserved, mask, temperature...)
    std::optional<std::uint64_t> sequence; // field 11 when it is all digits (some firmware)
    friend bool operator==(const attendance_record&, const attendance_record&) = default;
};

// Parses an ATTLOG body: `PIN\tTIME\tSTATUS\tVERIFY[\tWORKCODE[\t...]]` per line. Blank lines are
// skipped; every other line becomes a record or a rejected line. Rejected: fewer than 4 fields, a
// PIN that is empty, over 64 bytes or holds control bytes, a bad time, a status or verify that is
// not an int (surrounding spaces allowed), a line over 4096 bytes. Never throws.
parse_result<attendance_record> parse_attlog(std::string_view body);

} // namespace adms::protocol
