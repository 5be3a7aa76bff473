#pragma once

// Typed builders for the commands an admin may queue (reference §3). Each one validates its
// input and returns the exact command text, without the `C:<id>:` prefix, or an error naming the
// field and why: an invalid command is never produced. Field names are those of the admin API.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace adms::protocol {

// Why a command could not be built: the input field (e.g. "pin") and a reason for the admin.
struct command_error {
    std::string field;
    std::string message;
};

// A built command: `text` when the input was valid, else `error`.
struct built_command {
    std::optional<std::string> text;
    command_error error;

    // True when `text` holds a command.
    explicit operator bool() const { return text.has_value(); }
};

// "REBOOT": the device restarts (and handshakes again, picking up a changed TimeZone).
built_command reboot_command();

// "INFO": the device reports its settings in the command result.
built_command info_command();

// "CHECK": the device re-reads its options and re-uploads per its stamps.
built_command check_command();

// "LOG": the device uploads new records now.
built_command log_command();

// "CLEAR LOG": the device erases its attendance records. Irreversible on the device.
built_command clear_log_command();

// One user to create or replace on a device. Absent optional fields are not sent.
struct user_fields {
    std::string pin{};                       // 1 to 24 ASCII letters or digits, sent as given
    std::optional<std::string> name{};       // sent as Name= (empty when absent)
    std::optional<std::int64_t> privilege{}; // 0 user, 2 enroller, 6 admin, 14 super admin; Pri=
    std::optional<std::string> password{};   // empty (clears) or 1 to 8 digits; Passwd=
    std::optional<std::string> card{};       // empty (clears) or a 32-bit card number; Card=
    std::optional<std::int64_t> group{};     // 1 to 99; Grp=
    std::optional<std::int64_t> verify{};    // -1 (group default) or 0 to 255; Verify=
};

// "DATA UPDATE USERINFO PIN=…\tName=…\tPri=…[\tPasswd=…][\tCard=…][\tGrp=…][\tVerify=…]".
// PIN, Name and Pri are always sent (Name empty and Pri 0 when absent), so a re-sent user never
// keeps an admin privilege by omission; the others only when given, so an enrolled card or
// password the admin did not mention is not wiped.
built_command user_upsert_command(const user_fields& user);

// "DATA DELETE USERINFO PIN=…" (same PIN rule as user_upsert_command).
built_command user_delete_command(std::string_view pin);

// "DATA QUERY ATTLOG StartTime=YYYY-MM-DD HH:MM:SS\tEndTime=YYYY-MM-DD HH:MM:SS", device
// wall-clock times with from <= to, both within 2000-01-01 .. 9999-12-31.
built_command query_attlog_command(std::chrono::local_seconds from, std::chrono::local_seconds to);

// "SET OPTION name=value" (ATT, one key). `name`: 1 to 64 of [A-Za-z0-9_~], never DateTime;
// `value`: at most 256 bytes of UTF-8 without control characters, may be empty.
built_command set_option_command(std::string_view name, std::string_view value);

} // namespace adms::protocol
