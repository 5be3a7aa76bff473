#pragma once

#include "protocol/operlog.hpp"
#include "server/storage/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

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

// Writes of what else a device uploads; reached only through a write_tx (database.hpp). There is
// no read interface: nothing but tests reads these back yet (each backend offers test-support
// reads, e.g. sqlite_upload_store).
class upload_writer {
  public:
    // Keeps the lines a parser rejected; the same text in the same table counts as a duplicate.
    virtual storage_result<store_counts>
    store_rejected_lines(std::string_view serial_number, std::string_view table,
                         std::span<const protocol::rejected_line> lines, instant received_at) = 0;
    // Stores an OPERLOG batch: every line in the OPERLOG log (an identical line from the same
    // device counts as a duplicate), and each USER line also upserted as the device's user.
    virtual storage_result<store_counts>
    store_operlog(std::string_view serial_number, std::span<const protocol::operlog_record> lines,
                  instant received_at) = 0;
    // Keeps the body of an upload to a table the server does not parse; returns its id.
    virtual storage_result<std::int64_t> store_table_body(std::string_view serial_number,
                                                          std::string_view table,
                                                          std::string_view body,
                                                          instant received_at) = 0;
    // Keeps a photo; the same file name from the same device counts as a duplicate.
    virtual storage_result<store_counts> store_photo(std::string_view serial_number,
                                                     std::string_view file_name,
                                                     std::string_view bytes,
                                                     instant received_at) = 0;

  protected:
    ~upload_writer() = default;
};

} // namespace adms::server
