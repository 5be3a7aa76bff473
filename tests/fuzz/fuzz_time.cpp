// libFuzzer target: civil times and the ZK encoding (civil_time.hpp, zk_time.hpp). The input is
// read three ways: as a device time string, as a ZK DateTime value, and as an instant and a UTC
// offset for the time replies.

#include "protocol/civil_time.hpp"
#include "protocol/zk_time.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <chrono>
#include <cstring>

using namespace adms::protocol;
using namespace std::chrono;

namespace {

// The first 8 bytes as an integer (zero-padded when shorter).
std::int64_t read_int64(std::string_view bytes)
{
    std::uint64_t value = 0;
    std::memcpy(&value, bytes.data(), std::min(bytes.size(), sizeof value));
    return static_cast<std::int64_t>(value);
}

// Device time strings: a parse that succeeds round-trips and encodes from 2000 on.
void check_civil_time(std::string_view text)
{
    auto time = parse_civil_time(text);
    if (!time) {
        return;
    }
    // Fixed width, fixed separators: formatting gives back the very same text.
    FUZZ_CHECK(format_civil_time(*time, text[10]) == text);
    auto compact = format_compact_time(*time);
    FUZZ_CHECK(compact.size() == 14 && text::is_all_digits(compact));
    auto encoded = encode_zk_datetime(*time);
    // "nullopt before 2000-01-01"; otherwise the encoding decodes to the same time.
    FUZZ_CHECK(encoded.has_value() == (text.substr(0, 4) >= "2000"));
    if (encoded) {
        FUZZ_CHECK(*encoded >= 0);
        FUZZ_CHECK(decode_zk_datetime(*encoded) == time);
    }
}

// ZK DateTime values: a decode that succeeds encodes back to the same value.
void check_zk_value(std::int64_t value)
{
    auto decoded = decode_zk_datetime(value);
    if (value < 0) {
        FUZZ_CHECK(!decoded);
    }
    if (decoded) {
        FUZZ_CHECK(encode_zk_datetime(*decoded) == value);
    }
}

// The time replies for an instant from 1970 to 9999 and an offset within +-26 h (wider than any
// zone's): `now` is the server clock, so years beyond 9999 are out of the functions' domain.
void check_replies(std::int64_t raw_now, std::int64_t raw_offset)
{
    constexpr std::int64_t year_10000 = 253402300800; // 10000-01-01T00:00:00Z
    constexpr std::int64_t max_offset = 26 * 3600;
    auto now = sys_seconds{seconds{static_cast<std::int64_t>(static_cast<std::uint64_t>(raw_now) %
                                                             (year_10000 - max_offset))}};
    auto offset = seconds{raw_offset % (max_offset + 1)};

    auto http_date = format_http_date(now);
    FUZZ_CHECK(http_date.size() == 29 && http_date.ends_with(" GMT"));
    auto hhmm = format_offset_hhmm(offset);
    FUZZ_CHECK(hhmm.size() == 5 && (hhmm[0] == '+' || hhmm[0] == '-'));
    auto iso = format_offset_iso(offset);
    FUZZ_CHECK(iso.size() == 6 && iso[3] == ':');
    auto zone = time_zone_option(offset);
    FUZZ_CHECK(zone >= -max_offset / 60 && zone <= max_offset / 60);

    // P320: `Time=` + the local wall-clock time with a 'T' + the ISO offset.
    auto p320 = render_p320_time(now, offset);
    FUZZ_CHECK(p320.starts_with("Time="));
    FUZZ_CHECK(p320.size() == 5 + 19 + 6);
    FUZZ_CHECK(parse_civil_time(std::string_view{p320}.substr(5, 19)).has_value());

    // SEC: `DateTime=<ZK UTC>,ServerTZ=<+HHMM>`, empty before 2000.
    auto rtdata = render_rtdata_time(now, offset);
    auto before_2000 = now < sys_days{year{2000} / 1 / 1};
    FUZZ_CHECK(rtdata.empty() == before_2000);
    if (!rtdata.empty()) {
        FUZZ_CHECK(rtdata.starts_with("DateTime=") && rtdata.ends_with(",ServerTZ=" + hhmm));
        auto digits = std::string_view{rtdata}.substr(9, rtdata.find(',') - 9);
        auto value = text::parse_integer<std::int64_t>(digits);
        FUZZ_CHECK(value.has_value());
        FUZZ_CHECK(decode_zk_datetime(*value) == local_seconds{now.time_since_epoch()});
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto bytes = adms::fuzz::as_text(data, size);
    check_civil_time(bytes);
    check_zk_value(read_int64(bytes));
    check_replies(read_int64(bytes), read_int64(bytes.size() > 8 ? bytes.substr(8) : ""));
    return 0;
}
