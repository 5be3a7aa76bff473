#pragma once

#include "protocol/parse_result.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// An `OPLOG <code>\t<operator>\t<time>\t<obj1>...` line: something done on the device.
struct oplog_entry {
    int code = 0;                     // 0 power on, 1 power off, 4 menu, 30 new user, ...
    std::string operator_id;          // PIN of the operator, "0" for the device itself
    std::chrono::local_seconds time;  // the device's wall-clock time
    std::vector<std::string> objects; // the fields after the time, as sent (empty ones kept)
    friend bool operator==(const oplog_entry&, const oplog_entry&) = default;
};

// One OPERLOG line. Every line with a tag is kept (unknown tags too), so nothing is lost.
struct operlog_record {
    std::string tag;                  // "OPLOG", "USER", "FP", "FACE", "BIOPHOTO", "USERPIC", ...
    std::string raw;                  // the whole line as received, without its line ending
    std::optional<oplog_entry> oplog; // set for OPLOG lines only
    std::vector<key_value> fields;    // `key=value` items in order, for every other tag
    friend bool operator==(const operlog_record&, const operlog_record&) = default;
};

// A user's settings, from a `USER PIN=...\tName=...\tPri=...` line.
struct user_info {
    std::string pin;
    std::string name;             // bytes as sent: UTF-8, or GB18030 on Chinese devices
    std::optional<int> privilege; // Pri: 0 user, 14 administrator, ...; nullopt if absent/bad
    std::string password;         // Passwd
    std::string card;             // Card, as sent
    std::string group;            // Grp
    std::string time_zones;       // TZ
    std::optional<int> verify;    // Verify mode; nullopt if absent or not a number
    std::string vice_card;        // ViceCard
    friend bool operator==(const user_info&, const user_info&) = default;
};

// Parses an OPERLOG body. A line is `<TAG> <rest>` (a TAB after the tag is accepted too); the tag
// is a letter, then letters, digits or '_'. Rejected: lines without such a tag, OPLOG lines with a
// bad code or time. Blank lines are skipped. Never throws.
parse_result<operlog_record> parse_operlog(std::string_view body);

// The value of the first field named exactly `key`; nullopt if there is none.
std::optional<std::string_view> find_field(const operlog_record& record, std::string_view key);

// The user a USER line describes; nullopt for other tags and for a USER line without a PIN.
std::optional<user_info> to_user_info(const operlog_record& record);

} // namespace adms::protocol
