#pragma once

#include "protocol/parse_result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// The parameters of an iclock request target (`/iclock/cdata?SN=…&table=ATTLOG&Stamp=…`),
// percent-decoded ('+' is a space). Known keys are matched case-insensitively; every other key
// is kept in `extra`, in order.
struct iclock_query {
    std::string path;                        // the target before '?', as sent
    std::string serial_number;               // SN, validated
    std::optional<std::string> table;        // table=ATTLOG|OPERLOG|options|ATTPHOTO|…
    std::optional<std::string> stamp;        // Stamp= (upload cursor)
    std::optional<std::string> op_stamp;     // OpStamp=
    std::optional<std::string> options;      // options=all (the handshake)
    std::optional<std::string> push_version; // pushver=2.4.1 (absent: a PUSH 1.0 / 2.2.14 device)
    std::optional<std::string> language;     // language=69 (numeric code)
    std::optional<std::string> info;         // INFO= (first getrequest after boot)
    std::optional<std::string> type;         // type=time (P320, SEC rtdata)
    std::vector<key_value> extra;            // every other parameter, e.g. pushcommkey, DeviceType

    // The value of an extra parameter (exact key match), if present.
    [[nodiscard]] const std::string* find_extra(std::string_view key) const;
};

// Why a request target was not an iclock request.
struct query_error {
    std::string message;
};

// Either a parsed query or the reason it is not one.
struct query_parse {
    std::optional<iclock_query> query;
    query_error error;
    explicit operator bool() const { return query.has_value(); }
};

// True for a valid serial number: 1 to 32 letters, digits, '-' or '_'.
bool is_valid_serial_number(std::string_view serial_number);

// Parses a request target. Fails (as a value, never an exception) when SN is missing, invalid,
// or given twice with different values. A parameter whose percent-encoding is broken is kept
// undecoded rather than failing the request: devices retry a refused request forever.
query_parse parse_iclock_query(std::string_view target);

} // namespace adms::protocol
