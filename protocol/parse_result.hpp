#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace adms::protocol {

// A body line a parser could not use, kept so the server can store it raw and log why.
struct rejected_line {
    std::size_t line_number = 0; // 1-based, counting every line of the body
    std::string text;            // the line as received (without its line ending)
    std::string reason;          // why it was rejected, for logs and the admin API
};

// What a body parser returns: one bad line never loses the rest of the batch.
template <class Record>
struct parse_result {
    std::vector<Record> records;
    std::vector<rejected_line> rejected;
};

// One `key=value` pair, in the order the device sent it.
struct key_value {
    std::string key;
    std::string value;
    friend bool operator==(const key_value&, const key_value&) = default;
};

} // namespace adms::protocol
