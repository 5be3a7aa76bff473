#pragma once

#include "protocol/parse_result.hpp"

#include <string_view>

namespace adms::protocol {

// Parses a `table=options` body: `key=value,key=value,...` (usually one line; several lines are
// read the same way). Keys are trimmed of spaces, values are kept as sent (split at the first
// '='). Empty items (",,", a trailing comma) are skipped. An item without '=', with an empty key
// or with control bytes in its key is rejected: its `line_number` is the line it is on and its
// `text` is the item itself, not the whole line. Never throws.
parse_result<key_value> parse_options_body(std::string_view body);

} // namespace adms::protocol
