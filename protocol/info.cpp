#include "protocol/info.hpp"

#include "protocol/text.hpp"

namespace adms::protocol {
namespace {

// Field `index` trimmed of spaces, empty when the device sent fewer fields.
std::string_view field(const std::vector<std::string_view>& fields, std::size_t index)
{
    return index < fields.size() ? text::trim_spaces(fields[index]) : std::string_view{};
}

} // namespace

std::optional<device_info> parse_info(std::string_view value)
{
    if (value.empty()) {
        return std::nullopt;
    }
    auto fields = text::split(value, ',');
    device_info info;
    info.firmware.assign(field(fields, 0));
    info.user_count = text::parse_integer<long long>(field(fields, 1));
    info.fingerprint_count = text::parse_integer<long long>(field(fields, 2));
    info.attlog_count = text::parse_integer<long long>(field(fields, 3));
    info.ip_address.assign(field(fields, 4));
    info.fingerprint_algorithm = text::parse_integer<int>(field(fields, 5));
    info.face_algorithm = text::parse_integer<int>(field(fields, 6));
    info.faces_per_enroll = text::parse_integer<int>(field(fields, 7));
    info.face_count = text::parse_integer<long long>(field(fields, 8));
    for (std::size_t i = 9; i < fields.size(); ++i) {
        info.extra_fields.emplace_back(field(fields, i));
    }
    return info;
}

} // namespace adms::protocol
