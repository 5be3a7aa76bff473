#include "server/observability/log_format.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using namespace adms::server;

TEST_CASE("A request logs in Django runserver's format", "[log]")
{
    auto t = local_days{2026y / November / 21} + 14h + 5min + 12s;
    CHECK(django_request_line(t, "GET", "/iclock/getrequest?SN=RKQ4243400358", 11, 200, 2) ==
          "[21/Nov/2026 14:05:12] \"GET /iclock/getrequest?SN=RKQ4243400358 HTTP/1.1\" 200 2");
    CHECK(django_request_line(local_days{2025y / January / 2}, "POST", "/iclock/cdata?SN=A", 10,
                              503, 17) ==
          "[02/Jan/2025 00:00:00] \"POST /iclock/cdata?SN=A HTTP/1.0\" 503 17");
}

TEST_CASE("Control characters, escapes and invalid UTF-8 are escaped in logs", "[log]")
{
    CHECK(escape_for_log("plain text 123") == "plain text 123");
    CHECK(escape_for_log("a\nb\r\tc") == "a\\x0ab\\x0d\\x09c");
    CHECK(escape_for_log("\x1b[31mred") == "\\x1b[31mred");
    CHECK(escape_for_log("back\\slash") == "back\\\\slash");
    CHECK(escape_for_log(std::string_view{"nul\0x", 5}) == "nul\\x00x");
    CHECK(escape_for_log("\x7f") == "\\x7f");
    // Valid UTF-8 names stay readable.
    CHECK(escape_for_log("Jos\xc3\xa9 \xe6\x9d\x8e \xf0\x9f\x95\x90") ==
          "Jos\xc3\xa9 \xe6\x9d\x8e \xf0\x9f\x95\x90");
    // Invalid: a lone continuation byte, a truncated sequence, an overlong '/', a surrogate.
    CHECK(escape_for_log("\x80") == "\\x80");
    CHECK(escape_for_log("\xc3") == "\\xc3");
    CHECK(escape_for_log("\xe6\x9d") == "\\xe6\\x9d");
    CHECK(escape_for_log("\xc0\xaf") == "\\xc0\\xaf");
    CHECK(escape_for_log("\xed\xa0\x80") == "\\xed\\xa0\\x80");
    CHECK(escape_for_log("\xf5\x80\x80\x80") == "\\xf5\\x80\\x80\\x80");
}

TEST_CASE("A request line cannot be split by its target", "[log]")
{
    auto line =
        django_request_line(local_days{2026y / January / 1}, "GET",
                            "/iclock/cdata?SN=A\r\n[01/Jan/2026 00:00:00] fake", 11, 400, 0);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\r') == std::string::npos);
}

TEST_CASE("A time sync logs the block admins know", "[log]")
{
    time_sync_event event;
    event.serial_number = "RKQ4243400358";
    event.server_utc = sys_days{2026y / January / 29} + 19h + 47min + 20s;
    event.zone_name = "Asia/Riyadh";
    event.server_local = local_days{2026y / January / 29} + 22h + 47min + 20s;
    event.device_local = event.server_local;
    event.sending = "SET OPTIONS DateTime=838162040";
    event.reason = "first contact";
    CHECK(time_sync_block(event) ==
          "\xF0\x9F\x95\x90 Time sync request from device RKQ4243400358\n"
          "   Server UTC time: 2026-01-29 19:47:20\n"
          "   Server local time (Asia/Riyadh): 2026-01-29 22:47:20\n"
          "   Sending to device: 2026-01-29 22:47:20\n"
          "   \xF0\x9F\x93\xA4 Sending: SET OPTIONS DateTime=838162040 (reason: first contact)");
    event.reason.clear();
    event.sending = "DateTime=838151240,ServerTZ=+0300";
    CHECK(time_sync_block(event).substr(time_sync_block(event).rfind('\n') + 1) ==
          "   \xF0\x9F\x93\xA4 Sending: DateTime=838151240,ServerTZ=+0300");
}

TEST_CASE("redact_target hides the communication key and keeps everything else", "[log]")
{
    using adms::server::redact_target;
    CHECK(redact_target("/iclock/cdata?SN=A1&options=all&pushcommkey=s3cret&pushver=2.4.1") ==
          "/iclock/cdata?SN=A1&options=all&pushcommkey=***&pushver=2.4.1");
    CHECK(redact_target("/iclock/cdata?PushCommKey=s3cret") == "/iclock/cdata?PushCommKey=***");
    CHECK(redact_target("/iclock/cdata?SN=A1") == "/iclock/cdata?SN=A1");
    CHECK(redact_target("/iclock/cdata") == "/iclock/cdata");
    CHECK(redact_target("/x?a=1&&b=2&") == "/x?a=1&&b=2&");
    CHECK(redact_target("/x?pushcommkeyx=1") == "/x?pushcommkeyx=1");
}
