#include "protocol/gettime_reply.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using namespace adms::protocol;

namespace {
// The seed's log example: 19:47:20 UTC is 22:47:20 in Asia/Riyadh (+3).
const auto now = sys_days{2026y / January / 29} + 19h + 47min + 20s;
} // namespace

TEST_CASE("The GetTime reply renders the local time in each format", "[gettime]")
{
    CHECK(render_gettime_reply(now, 3h, time_format::standard) ==
          "<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>2026-01-29 22:47:20</Time>"
          "</Response>");
    CHECK(render_gettime_reply(now, 3h, time_format::iso) ==
          "<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>2026-01-29T22:47:20</Time>"
          "</Response>");
    CHECK(render_gettime_reply(now, 3h, time_format::compact) ==
          "<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>20260129224720</Time>"
          "</Response>");
}

TEST_CASE("The unix GetTime format is UTC seconds whatever the zone", "[gettime]")
{
    auto expected = "<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>1769716040</Time>"
                    "</Response>";
    CHECK(render_gettime_reply(now, 3h, time_format::unix_seconds) == expected);
    CHECK(render_gettime_reply(now, -(3h + 30min), time_format::unix_seconds) == expected);
}

TEST_CASE("The local date rolls over with the offset", "[gettime]")
{
    CHECK(
        render_gettime_reply(now, 5h + 45min, time_format::standard).find("2026-01-30 01:32:20") !=
        std::string::npos);
    CHECK(render_gettime_reply(now, -(20h), time_format::compact).find("20260128234720") !=
          std::string::npos);
}

TEST_CASE("Time format names parse case-insensitively and round-trip", "[gettime]")
{
    for (auto format : {time_format::standard, time_format::iso, time_format::compact,
                        time_format::unix_seconds}) {
        CHECK(parse_time_format(time_format_name(format)) == format);
    }
    CHECK(parse_time_format("ISO") == time_format::iso);
    CHECK(parse_time_format("Unix") == time_format::unix_seconds);
    CHECK_FALSE(parse_time_format(""));
    CHECK_FALSE(parse_time_format("xml"));
}

TEST_CASE("The SetTime reply has the same shape with its own Cmd", "[gettime]")
{
    CHECK(render_gettime_reply(now, 3h, time_format::iso, "SetTime") ==
          "<Response><Cmd>SetTime</Cmd><Status>OK</Status><Time>2026-01-29T22:47:20</Time>"
          "</Response>");
}
