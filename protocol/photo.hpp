#pragma once

#include "protocol/parse_result.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace adms::protocol {

// An ATTPHOTO / fdata upload: text headers, a NUL, then the JPEG bytes.
struct photo_upload {
    std::string_view file_name;     // PIN=<file>
    std::vector<key_value> headers; // every header line, in order (PIN, SN, size, CMD, …)
    std::string_view bytes;         // the image, everything after the first NUL
};

// Parses `PIN=<file>\nSN=<sn>\nsize=<n>\nCMD=uploadphoto\0<JPEG>`. Returns nullopt when there is
// no NUL or no PIN= header. The views point into `body`.
std::optional<photo_upload> parse_photo_upload(std::string_view body);

} // namespace adms::protocol
