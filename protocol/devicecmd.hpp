#pragma once

#include "protocol/parse_result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// What the device reports for one executed command (`ID=<id>&Return=<code>&CMD=<name>`).
struct command_result {
    std::string id;              // the command id the server sent, echoed verbatim
    int return_code = 0;         // 0 ok, negative failure; see describe_return_code
    std::string command;         // CMD, e.g. "DATA", "INFO", "Shell"; empty when absent
    std::vector<key_value> info; // `key=value` lines after the first (INFO replies), in order
    std::string content;         // Content of Shell/GetFile replies, lines joined by '\n'
    friend bool operator==(const command_result&, const command_result&) = default;
};

// Parses a `POST /iclock/devicecmd` body. A result starts at each line beginning with "ID=" and
// runs until the next such line. Its first line is split on '&' into ID, Return, CMD (other keys
// go to `info`; a "Content=" item takes the rest of the line). Later lines are `key=value`:
// Return and CMD (the multi-line Shell form) fill the header, "Content=" starts the content,
// which takes every following line (internal blank lines kept, trailing ones dropped), and other
// keys go to `info`. Rejected: a result with no or empty ID, no Return or a non-numeric Return
// (`text` is then the whole result, `line_number` its first line); a line before the first
// "ID="; a line without '=' inside a result (the result itself is kept). Never throws.
parse_result<command_result> parse_devicecmd(std::string_view body);

// What a Return code means (reference §1.4): "ok" for 0 and positive values (counts, sizes),
// a short description for the known negative codes, "failure" for other negative ones.
std::string_view describe_return_code(int code);

} // namespace adms::protocol
