// Unit tests of admsd-sim's pure pieces: the device side of the wire formats, the command line,
// the virtual clock and the report.

#include "protocol/zk_time.hpp"
#include "tests/sim/sim_options.hpp"
#include "tests/sim/sim_report.hpp"
#include "tests/sim/sim_wire.hpp"
#include "tests/sim/virtual_clock.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace adms::sim;
using namespace std::chrono_literals;

TEST_CASE("A reply head gives the status, Content-Length, Retry-After and Connection",
          "[sim][wire]")
{
    auto head = parse_reply_head("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 33\r\n"
                                 "Retry-After: 7\r\nConnection: Close\r\n\r\n");
    REQUIRE(head);
    CHECK(head->status == 503);
    CHECK(head->content_length == 33u);
    CHECK(head->retry_after_s == 7);
    CHECK(head->close);
    CHECK_FALSE(head->chunked);

    auto plain = parse_reply_head("HTTP/1.1 200 OK\nContent-Length: 2\n");
    REQUIRE(plain);
    CHECK(plain->status == 200);
    CHECK_FALSE(plain->close);
    CHECK_FALSE(plain->retry_after_s);

    auto old = parse_reply_head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
    REQUIRE(old);
    CHECK(old->close);
    auto old_kept = parse_reply_head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
    REQUIRE(old_kept);
    CHECK_FALSE(old_kept->close);

    auto date_retry =
        parse_reply_head("HTTP/1.1 503 x\r\nRetry-After: Fri, 03 Jul 2015 06:53:01 GMT\r\n\r\n");
    REQUIRE(date_retry);
    CHECK_FALSE(date_retry->retry_after_s);

    auto chunked = parse_reply_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    REQUIRE(chunked);
    CHECK(chunked->chunked);
}

TEST_CASE("Malformed reply heads are refused", "[sim][wire]")
{
    CHECK_FALSE(parse_reply_head(""));
    CHECK_FALSE(parse_reply_head("HTTP/2 200 OK\r\n\r\n"));
    CHECK_FALSE(parse_reply_head("HTTP/1.1 2x0 OK\r\n\r\n"));
    CHECK_FALSE(parse_reply_head("HTTP/1.1 2000 OK\r\n\r\n"));
    CHECK_FALSE(parse_reply_head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
    CHECK_FALSE(parse_reply_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n"));
    CHECK(parse_reply_head("HTTP/1.1 200\r\n\r\n")); // no reason phrase
}

TEST_CASE("The end of a reply head is found across CRLF and LF endings", "[sim][wire]")
{
    CHECK(find_head_end("HTTP/1.1 200 OK\r\nA: b\r\n\r\nOK") == 25u);
    CHECK(find_head_end("HTTP/1.1 200 OK\nA: b\n\nOK") == 22u);
    CHECK_FALSE(find_head_end("HTTP/1.1 200 OK\r\nA: b\r\n"));
    CHECK_FALSE(find_head_end("HTTP/1.1 200 OK\r\nA: b\r\n\r"));
    CHECK_FALSE(find_head_end(""));
}

TEST_CASE("A handshake reply gives Delay, ErrorDelay, TimeZone and the ATTLOG stamp", "[sim][wire]")
{
    auto h = parse_handshake_reply("GET OPTION FROM: SIM000001\nATTLOGStamp=1234\n"
                                   "OPERLOGStamp=None\nErrorDelay=30\nDelay=10\n"
                                   "TransFlag=TransData AttLog\tOpLog\nTimeZone=-210\nRealtime=1");
    REQUIRE(h);
    CHECK(h->serial_number == "SIM000001");
    CHECK(h->delay == 10);
    CHECK(h->error_delay == 30);
    CHECK(h->time_zone == -210);
    CHECK(h->attlog_stamp == "1234");
    CHECK(h->options.size() == 7);
    CHECK(h->options[4].value == "TransData AttLog\tOpLog");

    auto legacy = parse_handshake_reply("GET OPTION FROM: X1\r\nStamp=None\r\nDelay=abc\r\n");
    REQUIRE(legacy);
    CHECK(legacy->attlog_stamp == "None");
    CHECK_FALSE(legacy->delay);

    CHECK_FALSE(parse_handshake_reply("OK"));
    CHECK_FALSE(parse_handshake_reply("GET OPTION FROM: \nDelay=10"));
}

TEST_CASE("TimeZone values within -12..12 are hours, others minutes", "[sim][wire]")
{
    CHECK(time_zone_offset(3) == 3h);
    CHECK(time_zone_offset(-12) == -12h);
    CHECK(time_zone_offset(330) == 330min);
    CHECK(time_zone_offset(-210) == -210min);
    CHECK(time_zone_offset(0) == 0s);
}

TEST_CASE("A getrequest reply is OK or C:<id>:<command> lines", "[sim][wire]")
{
    CHECK(parse_command_reply("OK").records.empty());
    CHECK(parse_command_reply("OK").rejected.empty());
    CHECK(parse_command_reply("").records.empty());

    auto batch = parse_command_reply(
        "C:17:SET OPTIONS DateTime=583080894\nC:18:DATA UPDATE USERINFO PIN=1\tName=A:B\r\n"
        "\nC:bad-id:REBOOT\nhello\nC:19:\nC:20:REBOOT");
    REQUIRE(batch.records.size() == 3);
    CHECK(batch.records[0].id == "17");
    CHECK(batch.records[0].text == "SET OPTIONS DateTime=583080894");
    CHECK(batch.records[1].text == "DATA UPDATE USERINFO PIN=1\tName=A:B");
    CHECK(batch.records[2].id == "20");
    REQUIRE(batch.rejected.size() == 3);
    CHECK(batch.rejected[0].line_number == 4);
    CHECK(batch.rejected[1].text == "hello");
    CHECK(batch.rejected[2].reason == "empty command");
}

TEST_CASE("The DateTime of SET OPTIONS and SET OPTION commands is found", "[sim][wire]")
{
    CHECK(datetime_command_value("SET OPTIONS DateTime=583080894") == 583080894);
    CHECK(datetime_command_value("SET OPTION DateTime=583050990") == 583050990);
    CHECK(datetime_command_value("SET OPTIONS Delay=10,DateTime=1, TimeZone=3") == 1);
    CHECK_FALSE(datetime_command_value("SET OPTIONS Delay=10"));
    CHECK_FALSE(datetime_command_value("SET OPTIONS DateTime=-5"));
    CHECK_FALSE(datetime_command_value("SET OPTIONS DateTime=12x"));
    CHECK_FALSE(datetime_command_value("SET OPTIONS DateTime="));
    CHECK_FALSE(datetime_command_value("DATA UPDATE USERINFO DateTime=5"));
    // The reference's check values decode to the documented civil times.
    auto decoded = adms::protocol::decode_zk_datetime(
        *datetime_command_value("SET OPTIONS DateTime=583080894"));
    REQUIRE(decoded);
    CHECK(*decoded ==
          std::chrono::local_days{std::chrono::year{2018} / 2 / 22} + 14h + 54min + 54s);
}

TEST_CASE("Command results name the command as devices do", "[sim][wire]")
{
    CHECK(command_result_name("DATA UPDATE USERINFO PIN=1") == "DATA");
    CHECK(command_result_name("CLEAR LOG") == "CLEAR_LOG");
    CHECK(command_result_name("SET OPTIONS DateTime=1") == "SET OPTIONS");
    CHECK(command_result_name("SET OPTION DateTime=1") == "SET OPTION");
    CHECK(command_result_name("RELOAD OPTIONS") == "RELOAD OPTIONS");
    CHECK(command_result_name("SHELL date") == "Shell");
    CHECK(command_result_name(" REBOOT ") == "REBOOT");
    CHECK(command_result_name("INFO") == "INFO");
    CHECK(render_command_result("17", 0, "SET OPTIONS") == "ID=17&Return=0&CMD=SET OPTIONS");
    CHECK(render_command_result("A1", -1002, "DATA") == "ID=A1&Return=-1002&CMD=DATA");
}

TEST_CASE("The boot INFO is percent-encoded", "[sim][wire]")
{
    CHECK(url_encode("Ver 6.60,0,0,0,192.168.1.201,10") ==
          "Ver%206.60%2C0%2C0%2C0%2C192.168.1.201%2C10");
    CHECK(url_encode("a-b_c~d&e=f") == "a-b_c~d%26e%3Df");
    CHECK(url_encode("\xC3\xA9") == "%C3%A9");
}

TEST_CASE("Only 200 with OK:<lines> or OK acknowledges an ATTLOG upload", "[sim][wire]")
{
    CHECK(is_attlog_acknowledgement(200, "OK:128", 128));
    CHECK(is_attlog_acknowledgement(200, "OK", 5));
    CHECK_FALSE(is_attlog_acknowledgement(200, "OK:127", 128));
    CHECK_FALSE(is_attlog_acknowledgement(200, "OK: 1", 1));
    CHECK_FALSE(is_attlog_acknowledgement(200, "OK:1\n", 1));
    CHECK_FALSE(is_attlog_acknowledgement(200, "OK:", 0));
    CHECK_FALSE(is_attlog_acknowledgement(200, "ERROR", 1));
    CHECK_FALSE(is_attlog_acknowledgement(503, "OK:1", 1));
}

TEST_CASE("Percentiles use the nearest rank", "[sim][report]")
{
    std::vector<double> hundred;
    for (int i = 100; i >= 1; --i) {
        hundred.push_back(i);
    }
    auto d = summarize(hundred);
    CHECK(d.count == 100);
    CHECK(d.p50 == 50);
    CHECK(d.p99 == 99);
    CHECK(d.p999 == 100);
    CHECK(d.max == 100);
    CHECK(d.mean == Approx(50.5));

    std::vector<double> two_hundred;
    for (int i = 1; i <= 200; ++i) {
        two_hundred.push_back(i);
    }
    CHECK(nearest_rank(two_hundred, 0.99) == 198); // 0.99 * 200 is not 198.000...03 here
    CHECK(nearest_rank(two_hundred, 0.999) == 200);

    std::vector<double> one{4.5};
    CHECK(nearest_rank(one, 0.5) == 4.5);
    CHECK(nearest_rank(one, 0.999) == 4.5);
    std::vector<double> none;
    CHECK(summarize(none).count == 0);
    CHECK(nearest_rank(none, 0.5) == 0);
}

TEST_CASE("The command line gives every option, and refuses bad values", "[sim][options]")
{
    auto parsed = parse_options({"--target",
                                 "127.0.0.1:8080",
                                 "--devices",
                                 "20000",
                                 "--sn-prefix",
                                 "BENCH",
                                 "--duration",
                                 "2.5",
                                 "--drain",
                                 "0",
                                 "--delay",
                                 "0.5",
                                 "--ramp",
                                 "3",
                                 "--keep-alive",
                                 "--punch-interval",
                                 "0.25",
                                 "--backlog",
                                 "300",
                                 "--clock-offset",
                                 "120",
                                 "--drift-ppm",
                                 "50",
                                 "--zone",
                                 "Europe/Berlin",
                                 "--max-connections",
                                 "100",
                                 "--source-addresses",
                                 "8",
                                 "--seed",
                                 "42",
                                 "--json",
                                 "out.json",
                                 "--quiet",
                                 "--no-fast-retry",
                                 "--timeout",
                                 "3",
                                 "--threads",
                                 "2"});
    REQUIRE(parsed.options);
    const auto& o = *parsed.options;
    CHECK(o.target_host == "127.0.0.1");
    CHECK(o.target_port == 8080);
    CHECK(o.target == "127.0.0.1:8080");
    CHECK(o.devices == 20000);
    CHECK(o.sn_prefix == "BENCH");
    CHECK(o.duration_s == 2.5);
    CHECK(o.drain_s == 0);
    CHECK(o.delay_s == 0.5);
    CHECK_FALSE(o.delay_from_server);
    CHECK(o.ramp_s == 3);
    CHECK(o.keep_alive);
    CHECK(o.punch_interval_s == 0.25);
    CHECK(o.backlog == 300);
    CHECK(o.clock_offset_s == 120);
    CHECK(o.drift_ppm == 50);
    CHECK(o.zone == "Europe/Berlin");
    CHECK(o.max_connections == 100);
    CHECK(o.source_addresses == 8);
    CHECK(o.seed == 42);
    CHECK(o.json_path == "out.json");
    CHECK(o.quiet);
    CHECK_FALSE(o.fast_retry);
    CHECK(o.timeout_s == 3);
    CHECK(o.threads == 2);

    auto defaults = parse_options({"--target", "[::1]:80"});
    REQUIRE(defaults.options);
    CHECK(defaults.options->target_host == "::1");
    CHECK(defaults.options->devices == 10);
    CHECK(defaults.options->sn_prefix == "SIM");
    CHECK(defaults.options->duration_s == 30);
    CHECK(defaults.options->drain_s == 15);
    CHECK(defaults.options->delay_s == 10);
    CHECK(defaults.options->max_connections == 4096);
    CHECK(defaults.options->fast_retry);
    CHECK_FALSE(defaults.options->keep_alive);
    CHECK(parse_options({"--target", "h:1", "--delay", "server"}).options->delay_from_server);
    CHECK(parse_options({"--help"}).help);

    for (auto bad : std::vector<std::vector<std::string_view>>{
             {},
             {"--target", "localhost"},
             {"--target", "localhost:0"},
             {"--target", "::1:80"},
             {"--target", "h:1", "--devices", "0"},
             {"--target", "h:1", "--devices", "ten"},
             {"--target", "h:1", "--duration", "0"},
             {"--target", "h:1", "--duration", "nan"},
             {"--target", "h:1", "--delay", "-1"},
             {"--target", "h:1", "--sn-prefix", "A B"},
             {"--target", "h:1", "--sn-prefix", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0"},
             {"--target", "h:1", "--source-addresses", "255"},
             {"--target", "h:1", "--unknown", "1"},
             {"--target", "h:1", "--devices"},
         }) {
        auto result = parse_options(bad);
        CHECK_FALSE(result.options);
        CHECK_FALSE(result.error.empty());
    }
    CHECK(device_serial_number("SIM", 0) == "SIM000001");
    CHECK(device_serial_number("T", 999998) == "T999999");
}

TEST_CASE("The virtual clock runs with its offset and drift, and a DateTime resets it",
          "[sim][clock]")
{
    sys_ns start{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}};
    local_ns true_start{std::chrono::local_days{std::chrono::year{2026} / 3 / 1} + 1h};
    // 2 s fast, 100 ppm fast: after 1000 s it is 2.1 s fast.
    virtual_clock clock{2s, 100, start};
    CHECK(clock.read(start, true_start) == true_start + 2s);
    CHECK(clock.error(start + 1000s) == 2100ms);
    CHECK(clock.read(start + 1000s, true_start + 1000s) == true_start + 1000s + 2100ms);

    // Set to a whole second that is 300 ms behind the true time: the error is -300 ms, and the
    // drift goes on from there.
    auto at = start + 2000s + 300ms;
    auto true_at = true_start + 2000s + 300ms;
    auto error = clock.set(true_start + 2000s, at, true_at);
    CHECK(error == -300ms);
    CHECK(clock.error(at) == -300ms);
    CHECK(clock.error(at + 10000s) == -300ms + 1s);
}

TEST_CASE("The JSON report has the documented keys", "[sim][report]")
{
    report r;
    r.target = "127.0.0.1:8080";
    r.devices = 3;
    r.duration_s = 10;
    r.drain_s = 0;
    r.requests = 50;
    r.punches_generated = 20;
    r.punches_acknowledged = 20;
    r.errors.http[503] = 2;
    r.errors.timeout = 1;
    r.time_sync_abs_ms.count = 3;
    auto json = render_json(r);
    for (auto key : {"\"devices\": 3,",
                     "\"duration_s\": 10.000,",
                     "\"requests\": 50,",
                     "\"requests_per_s\": 5.000,",
                     "\"punches_sent\":",
                     "\"punches_acknowledged\": 20,",
                     "\"punches_per_s\": 2.000,",
                     "\"http_503\": 2",
                     "\"timeout\": 1",
                     "\"total\": 3",
                     "\"endpoints\": {\"handshake\": {\"count\": 0,",
                     "\"getrequest\":",
                     "\"attlog\":",
                     "\"connection_wait\": {",
                     "\"devicecmd\":",
                     "\"getrequest_time_sync\":",
                     "\"p999_ms\":",
                     "\"time_sync\": {\"count\": 3, \"p50_abs_ms\":",
                     "\"max_abs_ms\":",
                     "\"mean_ms\":",
                     "\"cpu_user_s\":",
                     "\"exit_status\": 0\n}"}) {
        INFO(key);
        CHECK(json.find(key) != std::string::npos);
    }
    CHECK(render_text(r).find("PASS") != std::string::npos);
    r.exit_status = 1;
    r.punches_acknowledged = 18;
    CHECK(render_text(r).find("FAIL: 2 punches left unacknowledged") != std::string::npos);
    r.punches_acknowledged = 20;
    CHECK(render_text(r).find("FAIL: no device completed a handshake") != std::string::npos);
}
