// libFuzzer target: protocol::parse_info (the INFO= value of the first getrequest after boot).

#include "protocol/info.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <algorithm>

using namespace adms::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto value = adms::fuzz::as_text(data, size);
    auto info = parse_info(value);

    // "nullopt only for an empty value".
    FUZZ_CHECK(info.has_value() == !value.empty());
    if (!info) {
        return 0;
    }
    // Fields are split on ',' and trimmed of spaces; field 10 onward goes to extra_fields.
    auto fields = static_cast<std::size_t>(std::count(value.begin(), value.end(), ',')) + 1;
    FUZZ_CHECK(info->extra_fields.size() == (fields > 9 ? fields - 9 : 0));
    FUZZ_CHECK(text::trim_spaces(info->firmware) == info->firmware);
    FUZZ_CHECK(text::trim_spaces(info->ip_address) == info->ip_address);
    FUZZ_CHECK(info->firmware.find(',') == std::string::npos);
    FUZZ_CHECK(info->ip_address.find(',') == std::string::npos);
    for (const auto& extra : info->extra_fields) {
        FUZZ_CHECK(text::trim_spaces(extra) == extra);
        FUZZ_CHECK(extra.find(',') == std::string::npos);
    }
    return 0;
}
