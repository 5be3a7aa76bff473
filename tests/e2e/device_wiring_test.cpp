// End-to-end: how the device server wires its parts together, through the real application on
// 127.0.0.1:0: replies that set a clock held to the whole second, command re-sends and expiry,
// the idle-poll cache, and stopping with work in flight.
#include "protocol/civil_time.hpp"
#include "protocol/zk_time.hpp"
#include "server/app.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"
#include "tz/zone.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::device_post;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::stored_device;
using adms::test::temp_dir;

namespace {

server::settings base_settings(const std::string& zone)
{
    server::settings s;
    s.time_zone = zone;
    return s;
}

// The DateTime value of a time-sync command line "C:<id>:SET OPTIONS DateTime=<n>".
std::int64_t date_time_value(const std::string& line)
{
    auto at = line.find("DateTime=");
    REQUIRE(at != std::string::npos);
    return std::stoll(line.substr(at + 9));
}

// The id of a command line "C:<id>:<text>".
std::string command_id(const std::string& line)
{
    REQUIRE(line.rfind("C:", 0) == 0);
    return line.substr(2, line.find(':', 2) - 2);
}

// Sleeps until the wall clock is `phase` past a whole second. A clock-setting request sent then
// is answered either at once, carrying the current second, or held to the next whole second:
// arriving 600 ms into a second, the two cannot be mistaken for each other.
void wait_for_phase(milliseconds phase)
{
    auto now = system_clock::now();
    auto into = duration_cast<milliseconds>(now - floor<seconds>(now));
    std::this_thread::sleep_for(into <= phase ? phase - into : 1000ms - into + phase);
}

// An RFC 1123 date ("Fri, 03 Jul 2015 06:53:01 GMT"), read without the server's code.
std::optional<sys_seconds> parse_http_date(const std::string& text)
{
    std::smatch m;
    if (!std::regex_match(text, m,
                          std::regex{R"([A-Z][a-z]{2}, (\d\d) ([A-Z][a-z]{2}) (\d{4}) )"
                                     R"((\d\d):(\d\d):(\d\d) GMT)"})) {
        return std::nullopt;
    }
    static const std::string months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    auto month_at = months.find(m[2].str());
    if (month_at == std::string::npos || month_at % 3 != 0) {
        return std::nullopt;
    }
    year_month_day date{year{std::stoi(m[3].str())}, month{unsigned(month_at / 3 + 1)},
                        day{unsigned(std::stoi(m[1].str()))}};
    return sys_days{date} + hours{std::stoi(m[4].str())} + minutes{std::stoi(m[5].str())} +
           seconds{std::stoi(m[6].str())};
}

// A ZK-encoded DateTime read by the protocol's formula, independently of the server's code:
// n = ((year-2000)*12*31 + (month-1)*31 + (day-1))*86400 + hour*3600 + minute*60 + second.
local_seconds zk_decode(std::int64_t n)
{
    auto d = n / 86400;
    year_month_day date{year{int(2000 + d / 372)}, month{unsigned(d % 372 / 31 + 1)},
                        day{unsigned(d % 31 + 1)}};
    return local_days{date} + seconds{n % 86400};
}

// Checks a reply that sets a clock: it carries `carried` (UTC), which is also its Date header's
// second and the whole second after the request went out (`sent`), and it arrived (`received`)
// at or after that second, within 500 ms of it.
void check_held_to_second(const adms::test::http_reply& reply, sys_seconds carried,
                          system_clock::time_point sent, system_clock::time_point received)
{
    INFO(reply.raw);
    INFO("sent " << duration_cast<milliseconds>(sent - carried).count() << " ms and received "
                 << duration_cast<milliseconds>(received - carried).count()
                 << " ms after the second carried");
    auto date = parse_http_date(reply.headers.at("date"));
    REQUIRE(date);
    CHECK(*date == carried);
    CHECK(carried > sent);
    CHECK(received >= carried);
    CHECK(received - carried < 500ms);
}

// A terminal in a thread that polls every 100 ms and never answers a command; it records when
// each command line arrived.
class silent_device {
  public:
    struct arrival {
        steady_clock::time_point at;
        std::string line;
    };

    silent_device(unsigned short port, std::string serial_number)
        : port_{port}, sn_{std::move(serial_number)}, thread_{[this] { run(); }}
    {
    }
    ~silent_device()
    {
        stop_ = true;
        thread_.join();
    }

    // The arrivals of command lines whose text starts with `prefix`.
    std::vector<arrival> received(const std::string& text_prefix) const
    {
        std::lock_guard lock{mutex_};
        std::vector<arrival> out;
        for (const auto& a : arrivals_) {
            auto text = a.line.substr(std::min(a.line.size(), a.line.find(':', 2) + 1));
            if (text.starts_with(text_prefix)) {
                out.push_back(a);
            }
        }
        return out;
    }

  private:
    void run()
    {
        while (!stop_) {
            auto poll = device_get(port_, "/iclock/getrequest?SN=" + sn_);
            auto at = steady_clock::now();
            if (poll.status == 200 && poll.body != "OK") {
                std::lock_guard lock{mutex_};
                std::istringstream lines{poll.body};
                for (std::string line; std::getline(lines, line);) {
                    arrivals_.push_back({at, line});
                }
            }
            std::this_thread::sleep_for(100ms);
        }
    }

    unsigned short port_;
    std::string sn_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<arrival> arrivals_;
    std::thread thread_;
};

// Polls as a device and answers every command with Return=0 until a poll finds nothing: after
// that empty claim the device counts as idle.
void settle(unsigned short port, const std::string& serial_number)
{
    for (int i = 0; i < 10; ++i) {
        auto poll = device_get(port, "/iclock/getrequest?SN=" + serial_number);
        REQUIRE(poll.status == 200);
        if (poll.body == "OK") {
            return;
        }
        std::string results;
        std::istringstream lines{poll.body};
        for (std::string line; std::getline(lines, line);) {
            results += fmt::format("ID={}&Return=0&CMD=X\n", command_id(line));
        }
        REQUIRE(device_post(port, "/iclock/devicecmd?SN=" + serial_number, results).body == "OK");
    }
    FAIL("device " << serial_number << " never became idle");
}

// The state and attempts of one command, read from the database the server writes.
std::optional<std::pair<server::command_state, int>>
command_state_of(const running_server& server, const std::string& serial_number,
                 const std::string& id)
{
    auto found = server.database()->commands().find_command(serial_number, id);
    if (!found || !*found.value) {
        return std::nullopt;
    }
    return std::pair{(*found.value)->state, (*found.value)->attempts};
}

// Sends `request` on a new connection, then sets `sent` and reads until the server closes it.
std::string send_then_read(unsigned short port, const std::string& request,
                           std::promise<void>& sent, milliseconds timeout)
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        sent.set_value();
        return {};
    }
    std::size_t written = 0;
    while (written < request.size()) {
        auto n = ::send(fd, request.data() + written, request.size() - written, MSG_NOSIGNAL);
        if (n <= 0) {
            break;
        }
        written += static_cast<std::size_t>(n);
    }
    sent.set_value();
    std::string reply;
    auto deadline = steady_clock::now() + timeout;
    char buffer[4096];
    while (steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) {
            continue;
        }
        auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        reply.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

} // namespace

TEST_CASE("Replies that set a clock are held to the next whole second, carry it in their Date "
          "header and leave at that second",
          "[e2e][time][hold]")
{
    temp_dir dir;
    running_server server{base_settings("Asia/Kathmandu"), dir.path};
    constexpr minutes kathmandu{5 * 60 + 45}; // +05:45 all year: local = UTC + 5:45
    auto to_utc = [&](local_seconds local) {
        return sys_seconds{local.time_since_epoch()} - kathmandu;
    };
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=HOLD1&options=all&pushver=2.4.1").status ==
            200);

    SECTION("a poll carrying the time sync (the device's local time)")
    {
        wait_for_phase(600ms);
        auto sent = system_clock::now();
        auto poll = device_get(server.port, "/iclock/getrequest?SN=HOLD1");
        auto received = system_clock::now();
        REQUIRE(poll.body.find("SET OPTIONS DateTime=") != std::string::npos);
        check_held_to_second(poll, to_utc(zk_decode(date_time_value(poll.body))), sent, received);
    }
    SECTION("rtdata?type=time (UTC)")
    {
        wait_for_phase(600ms);
        auto sent = system_clock::now();
        auto reply = device_get(server.port, "/iclock/rtdata?SN=HOLD1&type=time");
        auto received = system_clock::now();
        std::smatch m;
        REQUIRE(std::regex_match(reply.body, m, std::regex{R"(DateTime=(\d+),ServerTZ=\+0545)"}));
        auto carried = sys_seconds{zk_decode(std::stoll(m[1].str())).time_since_epoch()};
        check_held_to_second(reply, carried, sent, received);
    }
    SECTION("cdata?type=time (P320, local time with its offset)")
    {
        wait_for_phase(600ms);
        auto sent = system_clock::now();
        auto reply = device_get(server.port, "/iclock/cdata?SN=HOLD1&type=time");
        auto received = system_clock::now();
        std::smatch m;
        REQUIRE(std::regex_match(
            reply.body, m,
            std::regex{R"(Time=(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\+05:45)"}));
        year_month_day date{year{std::stoi(m[1].str())}, month{unsigned(std::stoi(m[2].str()))},
                            day{unsigned(std::stoi(m[3].str()))}};
        auto local = local_days{date} + hours{std::stoi(m[4].str())} +
                     minutes{std::stoi(m[5].str())} + seconds{std::stoi(m[6].str())};
        check_held_to_second(reply, to_utc(local), sent, received);
    }
    SECTION("getrequest?cmd=gettime (Unix seconds)")
    {
        wait_for_phase(600ms);
        auto sent = system_clock::now();
        auto reply = device_get(server.port, "/iclock/getrequest?SN=HOLD1&cmd=gettime&format=unix");
        auto received = system_clock::now();
        std::smatch m;
        REQUIRE(std::regex_search(reply.body, m, std::regex{R"(<Time>(\d{10})</Time>)"}));
        check_held_to_second(reply, sys_seconds{seconds{std::stoll(m[1].str())}}, sent, received);
    }
}

TEST_CASE("A command the device never answers is sent again after command_resend_after and "
          "expires after command_max_attempts",
          "[e2e][commands][resend]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.command_resend_after = 2s;
    config.command_max_attempts = 2;
    running_server server{config, dir.path};
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=RS1&options=all&pushver=2.4.1").status ==
            200);
    settle(server.port, "RS1"); // the first-contact time sync answered; the device is idle

    std::string id;
    {
        // Queued the way an operator does, through the admin API.
        auto reply = round_trip(
            server.port,
            fmt::format(
                "POST /devices/RS1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                "{}\r\nContent-Length: 18\r\nConnection: close\r\n\r\n{{\"command\":\"info\"}}",
                adms::test::test_token));
        INFO(reply.raw);
        REQUIRE(reply.status == 202);
        std::smatch m;
        REQUIRE(std::regex_search(reply.body, m, std::regex{R"re("command_id":"(\d+)")re"}));
        id = m[1].str();
    }
    auto start = steady_clock::now();
    silent_device device{server.port, "RS1"};

    // Sent, sent again about command_resend_after later, then expired: never a third time.
    std::optional<std::pair<server::command_state, int>> state;
    CHECK(adms::test::eventually(
        [&] {
            state = command_state_of(server, "RS1", id);
            return state && state->first == server::command_state::expired;
        },
        10s));
    auto expired_seen = steady_clock::now();
    REQUIRE(state);
    CHECK(state->second == 2);
    // A few more polls after the expiry: none carries the command.
    auto polls_after = device.received("INFO").size();
    std::this_thread::sleep_for(300ms); // three poll periods of the silent device
    auto arrivals = device.received("INFO");
    CHECK(arrivals.size() == polls_after);
    REQUIRE(arrivals.size() == 2);
    auto first_to_second = duration_cast<milliseconds>(arrivals[1].at - arrivals[0].at);
    INFO("re-sent " << first_to_second.count() << " ms after the first send; expired seen "
                    << duration_cast<milliseconds>(expired_seen - arrivals[1].at).count()
                    << " ms after the second; first send "
                    << duration_cast<milliseconds>(arrivals[0].at - start).count()
                    << " ms after queueing");
    CHECK(arrivals[0].at - start < 1s);
    CHECK(first_to_second >= 1900ms);
    CHECK(first_to_second < 3s);
    CHECK(expired_seen - arrivals[1].at >= 1900ms);
    CHECK(expired_seen - arrivals[1].at < 4s);
}

TEST_CASE("A command another program writes into the database reaches an idle device within "
          "command_resend_after",
          "[e2e][commands][idle]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.command_resend_after = 2s;
    running_server server{config, dir.path};
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=EXT1&options=all&pushver=2.4.1").status ==
            200);
    settle(server.port, "EXT1");
    silent_device device{server.port, "EXT1"};
    // Let the silent device's polls run from memory for a while (they find nothing).
    CHECK_FALSE(adms::test::eventually([&] { return !device.received("").empty(); }, 500ms));

    // A second SQLite connection: another program queueing a command behind admsd's back.
    sqlite3* other = nullptr;
    auto db_file = std::filesystem::path{server.config.data_dir} / "admsd.sqlite3";
    REQUIRE(sqlite3_open(db_file.c_str(), &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    auto inserted_at = steady_clock::now();
    auto now_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    auto sql = fmt::format("INSERT INTO command (serial_number, text, kind, state, created_at_ms) "
                           "VALUES ('EXT1', 'CHECK', 'other-program', 'queued', {})",
                           now_ms);
    REQUIRE(sqlite3_exec(other, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);

    CHECK(adms::test::eventually([&] { return !device.received("CHECK").empty(); }, 6s));
    auto arrivals = device.received("CHECK");
    REQUIRE(arrivals.size() == 1);
    auto took = duration_cast<milliseconds>(arrivals[0].at - inserted_at);
    INFO("arrived " << took.count() << " ms after the insert");
    // command_resend_after, plus one poll period and the claim.
    CHECK(took < 3s);
}

TEST_CASE("An idle device's polls answer from memory while another connection holds the "
          "database locked",
          "[e2e][commands][idle][storage_fault]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.command_resend_after = 60s; // the idle window outlasts the test
    running_server server{config, dir.path};
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=IDLE1&options=all&pushver=2.4.1").status ==
            200);
    settle(server.port, "IDLE1");

    sqlite3* other = nullptr;
    auto db_file = std::filesystem::path{server.config.data_dir} / "admsd.sqlite3";
    REQUIRE(sqlite3_open(db_file.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    // A claim now would wait the server's 5 s busy timeout: five polls in well under a second
    // each show that none went near the database.
    for (int i = 0; i < 5; ++i) {
        auto start = steady_clock::now();
        auto poll = device_get(server.port, "/iclock/getrequest?SN=IDLE1");
        auto took = duration_cast<milliseconds>(steady_clock::now() - start);
        INFO("poll " << i << " took " << took.count() << " ms");
        CHECK(poll.body == "OK");
        CHECK(took < 1s);
    }
    REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(server.log_text().find("Storage failed") == std::string::npos);
}

TEST_CASE("Stopping with work in flight: a sync-time waiter gets 503 at once, an upload is "
          "either acknowledged and stored or not acknowledged, and stop completes",
          "[e2e][stop]")
{
    temp_dir dir;
    running_server server{base_settings("UTC"), dir.path};
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=STOP1&options=all&pushver=2.4.1").status ==
            200);
    settle(server.port, "STOP1"); // no time sync pending: the next one is queued by the request

    // A sync-time request for a device that will not poll again: it waits for the result.
    std::promise<void> sync_sent;
    auto sync_request = fmt::format("POST /devices/STOP1/sync-time?timeout=60 HTTP/1.1\r\nHost: "
                                    "x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n"
                                    "Connection: close\r\n\r\n",
                                    adms::test::test_token);
    auto sync_reply = std::async(std::launch::async, [&] {
        return send_then_read(server.port, sync_request, sync_sent, 30s);
    });
    sync_sent.get_future().wait();
    // It is waiting once its command is queued (it subscribes right after).
    CHECK(adms::test::eventually([&] {
        auto commands = server.database()->commands().list_commands("STOP1", 10);
        return commands && std::any_of(commands.value->begin(), commands.value->end(),
                                       [](const server::queued_command& c) {
                                           return c.kind == "time-sync: on demand";
                                       });
    }));

    // A large upload, sent in full just before the stop.
    std::string batch;
    for (int i = 0; i < 20000; ++i) {
        batch += fmt::format("{}\t2026-03-01 {:02}:{:02}:{:02}\t0\t1\t\t0\t0\n", 1 + i % 50,
                             i / 3600 % 24, i / 60 % 60, i % 60);
    }
    std::promise<void> upload_sent;
    auto upload_request =
        adms::test::device_request("POST", "/iclock/cdata?SN=STOP1&table=ATTLOG&Stamp=1", batch);
    auto upload_reply = std::async(std::launch::async, [&] {
        return send_then_read(server.port, upload_request, upload_sent, 30s);
    });
    upload_sent.get_future().wait();

    auto stop_start = steady_clock::now();
    auto waiter_answered = std::async(std::launch::async, [&] {
        auto raw = sync_reply.get();
        return std::pair{raw, steady_clock::now()};
    });
    server.stop();
    auto stop_took = steady_clock::now() - stop_start;
    CHECK(stop_took < 11s); // the drain is bounded (10 s); with nothing stuck it is far less

    auto [sync_raw, answered_at] = waiter_answered.get();
    auto sync = adms::test::parse_replies(sync_raw);
    INFO(sync_raw);
    REQUIRE(sync.size() == 1);
    CHECK(sync[0].status == 503);
    CHECK(sync[0].body.find("Server stopping") != std::string::npos);
    CHECK(answered_at - stop_start < 1s);

    auto upload_raw = upload_reply.get();
    auto upload = adms::test::parse_replies(upload_raw);
    adms::server::sqlite_open_options read_only;
    read_only.read_only = true;
    auto db = adms::server::sqlite_database::open(
        std::filesystem::path{server.config.data_dir} / "admsd.sqlite3", read_only);
    REQUIRE(db);
    auto punches = (*db.value)->punches().list_punches({std::nullopt, 0, 30000});
    REQUIRE(punches);
    if (!upload.empty() && upload[0].status == 200) {
        // Acknowledged: every punch of it is stored.
        CHECK(upload[0].body == "OK:20000");
        CHECK(punches.value->size() == 20000);
    } else {
        // Not acknowledged (refused, or the connection closed): the device sends it again.
        INFO(upload_raw.substr(0, 300));
        CHECK(upload_raw.find("OK") == std::string::npos);
        CHECK((punches.value->empty() || punches.value->size() == 20000)); // one transaction
    }
}
