#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::protocol {

// What a device reports about itself in the INFO parameter of its first getrequest after boot.
struct device_info {
    std::string firmware;                       // e.g. "Ver 8.0.4.2-20200723"
    std::optional<long long> user_count;        // nullopt when absent or not a number
    std::optional<long long> fingerprint_count; // likewise for every number below
    std::optional<long long> attlog_count;
    std::string ip_address;                   // as sent, empty when absent
    std::optional<int> fingerprint_algorithm; // e.g. 10
    std::optional<int> face_algorithm;        // -1 when the device has no face reader
    std::optional<int> faces_per_enroll;
    std::optional<long long> face_count;
    std::vector<std::string> extra_fields; // field 10 onward (flags, ...) as sent
    friend bool operator==(const device_info&, const device_info&) = default;
};

// Parses an already percent-decoded INFO value: `<firmware>,<users>,<fingerprints>,<attlogs>,
// <ip>,<fp-alg>,<face-alg>,<faces-per-enroll>,<faces>,<flags>...`. Fields are split on ',' and
// trimmed of spaces; missing fields stay empty. nullopt only for an empty value. Never throws.
std::optional<device_info> parse_info(std::string_view value);

} // namespace adms::protocol
