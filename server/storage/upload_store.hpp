#pragma once

#include "protocol/operlog.hpp"
#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace adms::server {

// A body line a parser could not use, as stored.
struct stored_rejected_line {
    std::int64_t id = 0;
    std::string serial_number;
    std::string table; // the upload's table=, e.g. "ATTLOG"
    std::size_t line_number = 0;
    std::string text;
    std::string reason;
    instant received_at{};
};

// One OPERLOG line as stored (every tag: OPLOG, USER, FP, FACE, BIOPHOTO, USERPIC, unknown).
struct stored_operlog_line {
    std::int64_t id = 0;
    std::string serial_number;
    std::string tag;
    std::string raw;
    std::optional<std::string> pin;             // PIN= (or Pin=) of a non-OPLOG line
    std::optional<protocol::oplog_entry> oplog; // OPLOG lines: code, operator, time, objects
    instant received_at{};
};

// A user as the device last described it in a USER line.
struct stored_user {
    std::string serial_number;
    protocol::user_info user;
    std::string raw; // the USER line as received
    instant updated_at{};
};

// The body of an upload to a table the server does not parse, kept raw.
struct stored_table_body {
    std::int64_t id = 0;
    std::string serial_number;
    std::string table;
    std::string body; // bytes as received
    instant received_at{};
};

// An uploaded photo (ATTPHOTO, fdata).
struct stored_photo {
    std::int64_t id = 0;
    std::string serial_number;
    std::string file_name; // PIN=<file> as sent
    std::string bytes;     // the JPEG
    instant received_at{};
};

} // namespace adms::server
