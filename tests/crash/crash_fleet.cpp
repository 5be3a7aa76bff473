// crash_fleet: a fleet of simulated ZKTeco terminals uploading ATTLOG punches to admsd as fast as
// they can, re-sending whatever was not acknowledged, as real devices do. Told to stop (SIGTERM,
// SIGINT or --duration), it stops making new punches, drains what is still unacknowledged, then
// opens the server's database read-only and checks that every punch answered `OK:<n>` is stored
// exactly once. tests/crash/crash_test.sh kills the server with SIGKILL while this runs.
//
// Usage: crash_fleet --port PORT --db PATH [--devices 50] [--duration SECONDS] [--drain-timeout
//        SECONDS] [--timeout-ms 5000] [--realtime-percent 40] [--seed N]
// Exit status: 0 when punches were acknowledged, none of them was lost or doubled, no row is
// foreign or altered, the database passes quick_check and the drain finished; 1 when a check
// failed; 2 on a usage or database error.

#include "protocol/civil_time.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace net::experimental::awaitable_operators;

// What the command line asks for.
struct options {
    unsigned short port = 0;
    std::string database;
    std::size_t devices = 50;
    std::chrono::seconds duration{0}; // 0: until SIGTERM or SIGINT
    std::chrono::seconds drain_timeout{30};
    std::chrono::milliseconds request_timeout{5000};
    unsigned realtime_percent = 40;
    std::optional<std::uint64_t> seed;
};

template <class Integer>
bool parse_integer(std::string_view text, Integer& out)
{
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

// Reads `--name value` pairs; nullopt (with `error` set) on anything else.
std::optional<options> parse_options(int argc, char** argv, std::string& error)
{
    options o;
    for (int i = 1; i < argc; i += 2) {
        std::string_view name = argv[i];
        if (i + 1 >= argc) {
            error = fmt::format("missing value after {}", name);
            return std::nullopt;
        }
        std::string_view value = argv[i + 1];
        bool ok = true;
        std::int64_t number = 0;
        if (name == "--port") {
            ok = parse_integer(value, o.port) && o.port != 0;
        } else if (name == "--db") {
            o.database = value;
            ok = !value.empty();
        } else if (name == "--devices") {
            ok = parse_integer(value, o.devices) && o.devices > 0 && o.devices <= 10000;
        } else if (name == "--duration") {
            ok = parse_integer(value, number) && number >= 0;
            o.duration = std::chrono::seconds{number};
        } else if (name == "--drain-timeout") {
            ok = parse_integer(value, number) && number > 0;
            o.drain_timeout = std::chrono::seconds{number};
        } else if (name == "--timeout-ms") {
            ok = parse_integer(value, number) && number > 0;
            o.request_timeout = std::chrono::milliseconds{number};
        } else if (name == "--realtime-percent") {
            ok = parse_integer(value, o.realtime_percent) && o.realtime_percent <= 100;
        } else if (name == "--seed") {
            std::uint64_t seed = 0;
            ok = parse_integer(value, seed);
            o.seed = seed;
        } else {
            error = fmt::format("unknown option '{}'", name);
            return std::nullopt;
        }
        if (!ok) {
            error = fmt::format("invalid {} '{}'", name, value);
            return std::nullopt;
        }
    }
    if (o.port == 0 || o.database.empty()) {
        error = "--port and --db are required";
        return std::nullopt;
    }
    return o;
}

// Punch k of every device, derived from k alone: each k has its own wall-clock time, so the
// (PIN, time) pairs of a device are distinct and a second row for one is a double store. 61 s
// apart from a fixed start: a million punches span two years.
constexpr auto first_punch = std::chrono::local_days{std::chrono::year{2024} / 1 / 1} + 8h;
constexpr auto punch_spacing = 61s;

std::chrono::local_seconds punch_time(std::uint64_t k)
{
    return first_punch + punch_spacing * static_cast<std::int64_t>(k);
}
std::string punch_pin(std::uint64_t k)
{
    return std::to_string(1 + k % 997);
}
int punch_status(std::uint64_t k)
{
    return static_cast<int>(k % 6);
}
int punch_verify(std::uint64_t k)
{
    return k % 3 == 0 ? 15 : 1;
}

// The ATTLOG line of punch k, as a terminal writes it: PIN, time, status, verify, workcode and
// two reserved fields, tab-separated.
std::string attlog_line(std::uint64_t k)
{
    return fmt::format("{}\t{}\t{}\t{}\t0\t0\t0", punch_pin(k),
                       adms::protocol::format_civil_time(punch_time(k)), punch_status(k),
                       punch_verify(k));
}

// The punch whose time is `local_time`, if it is one of ours.
std::optional<std::uint64_t> punch_index(std::string_view local_time)
{
    auto time = adms::protocol::parse_civil_time(local_time);
    if (!time || *time < first_punch) {
        return std::nullopt;
    }
    auto offset = *time - first_punch;
    if (offset % punch_spacing != 0s) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(offset / punch_spacing);
}

// Milliseconds since the Unix epoch: comparable with the kill times crash_test.sh logs.
std::int64_t wall_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// How one request ended. Only `ok` with the expected body acknowledges anything.
enum class outcome {
    ok,      // a complete reply
    refused, // nothing listening: the server is down
    reset,   // the connection failed while sending or reading
    closed,  // closed without a byte of reply (the server died with the request in hand)
    partial, // closed in the middle of a reply
    timeout,
};

// One reply as read off the wire.
struct reply {
    outcome result = outcome::ok;
    int status = 0;
    std::string body;
};

// Parses a complete HTTP response (the server closed after it). A reply without its headers'
// end, without Content-Length or with fewer body bytes than announced is `partial`: a device
// treats it as a failure.
reply parse_reply(std::string_view raw)
{
    reply r;
    r.result = raw.empty() ? outcome::closed : outcome::partial;
    auto header_end = raw.find("\r\n\r\n");
    if (header_end == std::string_view::npos || !raw.starts_with("HTTP/1.") || raw.size() < 12 ||
        !parse_integer(raw.substr(9, 3), r.status)) {
        return r;
    }
    std::optional<std::size_t> length;
    auto headers = raw.substr(0, header_end + 2);
    for (auto pos = headers.find("\r\n"); pos != std::string_view::npos;) {
        auto end = headers.find("\r\n", pos + 2);
        if (end == std::string_view::npos) {
            break;
        }
        auto line = headers.substr(pos + 2, end - pos - 2);
        auto colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string name{line.substr(0, colon)};
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            auto value = line.substr(colon + 1);
            value.remove_prefix(std::min(value.find_first_not_of(' '), value.size()));
            std::size_t n = 0;
            if (name == "content-length" && parse_integer(value, n)) {
                length = n;
            }
        }
        pos = end;
    }
    auto body = raw.substr(header_end + 4);
    if (!length || body.size() != *length) {
        return r;
    }
    r.result = outcome::ok;
    r.body = std::string{body};
    return r;
}

// Connects, sends `request` and reads until the server closes (Connection: close).
net::awaitable<reply> talk(tcp::socket& socket, tcp::endpoint server, const std::string& request)
{
    auto [connect_ec] = co_await socket.async_connect(server, net::as_tuple(net::use_awaitable));
    if (connect_ec) {
        co_return reply{connect_ec == net::error::connection_refused ? outcome::refused
                                                                     : outcome::reset,
                        0,
                        {}};
    }
    auto [write_ec, written] =
        co_await net::async_write(socket, net::buffer(request), net::as_tuple(net::use_awaitable));
    if (write_ec) {
        co_return reply{outcome::reset, 0, {}};
    }
    std::string raw;
    auto [read_ec, read] = co_await net::async_read(socket, net::dynamic_buffer(raw, 1 << 20),
                                                    net::as_tuple(net::use_awaitable));
    // Only an orderly close ends a reply; a reset after a complete-looking reply still counts as
    // a failure, the stricter reading.
    if (read_ec != net::error::eof) {
        co_return reply{raw.empty() ? outcome::reset : outcome::partial, 0, {}};
    }
    co_return parse_reply(raw);
}

// One request on a new connection, bounded by `timeout`.
net::awaitable<reply> exchange(tcp::endpoint server, const std::string& request,
                               steady::duration timeout)
{
    auto executor = co_await net::this_coro::executor;
    tcp::socket socket{executor};
    net::steady_timer deadline{executor, timeout};
    auto result = co_await (talk(socket, server, request) ||
                            deadline.async_wait(net::as_tuple(net::use_awaitable)));
    if (result.index() == 1) {
        co_return reply{outcome::timeout, 0, {}};
    }
    co_return std::get<0>(std::move(result));
}

// One simulated terminal. Its punches are 0 .. generated-1; `pending` holds those not yet
// acknowledged, oldest first (new punches always have the largest index, so appending keeps the
// order).
struct device {
    // When punch k was acknowledged, and when the request that got the OK was sent (wall_ms();
    // 0 while unacknowledged). A row the server received before `request_sent_at` was stored
    // by an earlier attempt whose reply never arrived.
    struct acknowledgement {
        std::int64_t at = 0;
        std::int64_t request_sent_at = 0;
    };

    std::string serial_number;
    std::uint64_t generated = 0;
    std::deque<std::uint64_t> pending;
    std::vector<acknowledgement> acknowledged; // by punch index
    std::mt19937_64 random;
    std::size_t failed_batch = 0; // size of the last failed batch, 0 after a success

    std::uint64_t make_punch()
    {
        acknowledged.emplace_back();
        return generated++;
    }
};

// Counters over the whole run.
struct fleet_stats {
    std::uint64_t requests = 0;
    std::uint64_t handshakes = 0;
    std::uint64_t batch_uploads = 0;
    std::uint64_t realtime_uploads = 0;
    std::uint64_t lines_sent = 0; // every line of every upload, re-sends included
    std::uint64_t acknowledged = 0;
    std::uint64_t refused = 0;
    std::uint64_t reset = 0;
    std::uint64_t closed = 0;
    std::uint64_t timeout = 0;
    std::uint64_t partial = 0;
    std::uint64_t unavailable = 0;   // 503
    std::uint64_t other_status = 0;  // any other non-200
    std::uint64_t unexpected_ok = 0; // 200 whose body is not OK:<lines sent>
    std::uint64_t device_errors = 0; // a device coroutine ended by an exception
    std::string first_unexpected_ok; // its body, for the report
};

// The fleet: every device is a coroutine on one io_context thread, so no state here is shared
// between threads.
class fleet {
  public:
    fleet(net::io_context& io, const options& o, std::uint64_t seed)
        : io_{io}, options_{o}, server_{net::ip::make_address_v4("127.0.0.1"), o.port},
          signals_{io, SIGTERM, SIGINT}, duration_timer_{io}
    {
        std::mt19937_64 seeds{seed};
        devices_.resize(o.devices);
        for (std::size_t i = 0; i < devices_.size(); ++i) {
            devices_[i].serial_number = fmt::format("CRASH{:04}", i + 1);
            devices_[i].random.seed(seeds());
        }
    }

    // Runs the devices until they are told to stop and have drained (or the drain timed out).
    void run()
    {
        started_ = steady::now();
        signals_.async_wait([this](boost::system::error_code ec, int) {
            if (!ec) {
                stop();
            }
        });
        if (options_.duration > 0s) {
            duration_timer_.expires_after(options_.duration);
            duration_timer_.async_wait([this](boost::system::error_code ec) {
                if (!ec) {
                    stop();
                }
            });
        }
        // The script waits for this line before its first kill: from here on SIGTERM drains.
        fmt::print("crash_fleet: {} devices uploading to {}\n", devices_.size(), server_.port());
        std::fflush(stdout);
        for (auto& d : devices_) {
            net::co_spawn(io_, run_device(d), [this, &d](std::exception_ptr e) {
                if (e) {
                    ++stats_.device_errors;
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        fmt::print(stderr, "crash_fleet: device {} stopped: {}\n", d.serial_number,
                                   ex.what());
                    }
                }
                if (++finished_ == devices_.size()) {
                    finished_at_ = steady::now();
                    signals_.cancel();
                    duration_timer_.cancel();
                }
            });
        }
        io_.run();
    }

    const std::vector<device>& devices() const { return devices_; }
    const fleet_stats& stats() const { return stats_; }
    // Seconds from start to the stop request, and from there to the end of the drain.
    double run_seconds() const { return seconds(started_, stop_requested_.value_or(finished_at_)); }
    double drain_seconds() const
    {
        return stop_requested_ ? seconds(*stop_requested_, finished_at_) : 0.0;
    }
    bool drained() const
    {
        return std::all_of(devices_.begin(), devices_.end(),
                           [](const device& d) { return d.pending.empty(); });
    }

  private:
    static double seconds(steady::time_point from, steady::time_point to)
    {
        return std::chrono::duration<double>(to - from).count();
    }

    void stop()
    {
        if (!stop_requested_) {
            stop_requested_ = steady::now();
            drain_deadline_ = *stop_requested_ + options_.drain_timeout;
        }
    }
    bool stopping() const { return stop_requested_.has_value(); }
    bool drain_expired() const { return stopping() && steady::now() >= drain_deadline_; }

    // A failed request: wait a little before the next one, as a device waits before retrying.
    net::awaitable<void> back_off(device& d)
    {
        net::steady_timer pause{co_await net::this_coro::executor,
                                std::chrono::milliseconds{50 + d.random() % 151}};
        co_await pause.async_wait(net::as_tuple(net::use_awaitable));
    }

    std::string request_text(std::string_view method, const std::string& target,
                             const std::string& body) const
    {
        std::string text =
            fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: iClock Proxy/1.09\r\n"
                        "Accept: */*\r\nConnection: close\r\n",
                        method, target, options_.port);
        if (method == "POST") {
            text += fmt::format("Content-Length: {}\r\n", body.size());
        }
        text += "\r\n";
        text += body;
        return text;
    }

    // Sends a request and counts how it ended; the reply is the caller's to judge.
    net::awaitable<reply> send(const std::string& request)
    {
        ++stats_.requests;
        auto r = co_await exchange(server_, request, options_.request_timeout);
        switch (r.result) {
        case outcome::ok:
            if (r.status == 503) {
                ++stats_.unavailable;
            } else if (r.status != 200) {
                ++stats_.other_status;
            }
            break;
        case outcome::refused:
            ++stats_.refused;
            break;
        case outcome::reset:
            ++stats_.reset;
            break;
        case outcome::closed:
            ++stats_.closed;
            break;
        case outcome::timeout:
            ++stats_.timeout;
            break;
        case outcome::partial:
            ++stats_.partial;
            break;
        }
        co_return r;
    }

    // The boot handshake, repeated until the server answers it; false when told to stop first.
    net::awaitable<bool> handshake(device& d)
    {
        auto request = request_text(
            "GET", fmt::format("/iclock/cdata?SN={}&options=all&pushver=2.4.1", d.serial_number),
            {});
        for (;;) {
            if (stopping()) {
                co_return false;
            }
            ++stats_.handshakes;
            auto r = co_await send(request);
            if (r.result == outcome::ok && r.status == 200 &&
                r.body.starts_with("GET OPTION FROM: " + d.serial_number)) {
                co_return true;
            }
            co_await back_off(d);
        }
    }

    // Uploads punches `batch` in one ATTLOG request; true when the server acknowledged all of
    // them: HTTP 200, body exactly OK:<number of lines>. (admsd answers the number of lines it
    // parsed, duplicates included; every line sent here parses.)
    net::awaitable<bool> upload(device& d, const std::vector<std::uint64_t>& batch)
    {
        std::string body;
        for (auto k : batch) {
            body += attlog_line(k);
            body += '\n';
        }
        // The device's upload cursor: it moves with the newest punch sent, as a stamp does.
        auto target = fmt::format("/iclock/cdata?SN={}&table=ATTLOG&Stamp={}", d.serial_number,
                                  1000000 + batch.back());
        stats_.lines_sent += batch.size();
        auto sent_at = wall_ms();
        auto r = co_await send(request_text("POST", target, body));
        if (r.result != outcome::ok || r.status != 200) {
            co_return false;
        }
        if (r.body != fmt::format("OK:{}", batch.size())) {
            if (stats_.unexpected_ok++ == 0) {
                stats_.first_unexpected_ok = r.body.substr(0, 80);
            }
            co_return false;
        }
        auto now = wall_ms();
        for (auto k : batch) {
            d.acknowledged[k] = {now, sent_at};
        }
        stats_.acknowledged += batch.size();
        co_return true;
    }

    net::awaitable<void> run_device(device& d)
    {
        if (!co_await handshake(d)) {
            co_return;
        }
        for (;;) {
            if (stopping() && (d.pending.empty() || drain_expired())) {
                co_return;
            }
            bool realtime = !stopping() && d.random() % 100 < options_.realtime_percent;
            std::vector<std::uint64_t> batch;
            if (realtime) {
                // A punch just taken, pushed on its own (Realtime=1).
                batch.push_back(d.make_punch());
                ++stats_.realtime_uploads;
            } else {
                // Punches taken since the last upload join the queue; the batch is its oldest
                // 1-128 lines. After a failure the same batch often goes again as it was.
                if (!stopping()) {
                    for (auto n = d.random() % 33; n > 0; --n) {
                        d.pending.push_back(d.make_punch());
                    }
                    if (d.pending.empty()) {
                        d.pending.push_back(d.make_punch());
                    }
                }
                std::size_t limit = std::min<std::size_t>(128, d.pending.size());
                std::size_t size = 1 + d.random() % limit;
                if (d.failed_batch > 0 && d.random() % 2 == 0) {
                    size = std::min(d.failed_batch, limit);
                }
                batch.assign(d.pending.begin(),
                             d.pending.begin() + static_cast<std::ptrdiff_t>(size));
                ++stats_.batch_uploads;
            }
            bool acknowledged = co_await upload(d, batch);
            if (acknowledged) {
                if (!realtime) {
                    d.pending.erase(d.pending.begin(),
                                    d.pending.begin() + static_cast<std::ptrdiff_t>(batch.size()));
                }
                d.failed_batch = 0;
                continue;
            }
            if (realtime) {
                d.pending.push_back(batch.front()); // kept for the next batch upload
            } else {
                d.failed_batch = batch.size();
            }
            co_await back_off(d);
        }
    }

    net::io_context& io_;
    options options_;
    tcp::endpoint server_;
    net::signal_set signals_;
    net::steady_timer duration_timer_;
    std::vector<device> devices_;
    fleet_stats stats_;
    std::size_t finished_ = 0;
    steady::time_point started_;
    steady::time_point finished_at_;
    std::optional<steady::time_point> stop_requested_;
    steady::time_point drain_deadline_;
};

// What the database holds of the fleet's punches, against what the fleet knows.
struct verification {
    std::string error; // the database could not be read: nothing else is meaningful
    std::string integrity;
    std::uint64_t stored = 0;                // rows for the fleet's serial numbers
    std::uint64_t lost = 0;                  // acknowledged, not stored
    std::uint64_t duplicated = 0;            // punches stored more than once
    std::uint64_t extra_rows = 0;            // the rows beyond the first of those
    std::uint64_t stored_unacknowledged = 0; // stored by a request whose OK never arrived
    std::uint64_t unacknowledged = 0;        // still not acknowledged at the end
    std::uint64_t unexpected = 0;            // rows no device sent, or altered
    std::uint64_t quarantined = 0;
    std::vector<std::string> examples; // a few of the failures, for the report
};

// A read-only SQLite connection, closed at scope exit.
struct database {
    sqlite3* db = nullptr;
    database() = default;
    database(const database&) = delete;
    database& operator=(const database&) = delete;
    ~database() { sqlite3_close(db); }
};

// A prepared statement, finalized at scope exit.
struct query {
    sqlite3_stmt* stmt = nullptr;
    query() = default;
    query(const query&) = delete;
    query& operator=(const query&) = delete;
    ~query() { sqlite3_finalize(stmt); }
    std::string text(int column) const
    {
        const auto* data = sqlite3_column_text(stmt, column);
        return data ? std::string{reinterpret_cast<const char*>(data),
                                  static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))}
                    : std::string{};
    }
};

// Compares the punch table (admsd's schema, server/storage/sqlite/schema.cpp) with what was sent
// and acknowledged.
verification verify(const std::string& path, const std::vector<device>& devices)
{
    verification v;
    database conn;
    if (sqlite3_open_v2(path.c_str(), &conn.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        v.error = fmt::format("cannot open {}: {}", path,
                              conn.db ? sqlite3_errmsg(conn.db) : "out of memory");
        return v;
    }
    sqlite3_busy_timeout(conn.db, 10000);
    auto fail = [&](std::string_view what) {
        v.error = fmt::format("{}: {}", what, sqlite3_errmsg(conn.db));
        return v;
    };
    {
        query check;
        if (sqlite3_prepare_v2(conn.db, "PRAGMA quick_check", -1, &check.stmt, nullptr) !=
            SQLITE_OK) {
            return fail("quick_check");
        }
        while (sqlite3_step(check.stmt) == SQLITE_ROW) {
            v.integrity += (v.integrity.empty() ? "" : "; ") + check.text(0);
        }
    }
    query rows;
    if (sqlite3_prepare_v2(conn.db,
                           "SELECT pin, local_time, status, verify, raw_line, quarantined, "
                           "received_at_ms FROM punch WHERE serial_number = ?",
                           -1, &rows.stmt, nullptr) != SQLITE_OK) {
        return fail("prepare");
    }
    auto example = [&](std::string text) {
        if (v.examples.size() < 10) {
            v.examples.push_back(std::move(text));
        }
    };
    for (const auto& d : devices) {
        std::vector<std::uint32_t> copies(d.generated, 0);
        std::vector<std::int64_t> first_received(d.generated, 0);
        sqlite3_reset(rows.stmt);
        sqlite3_bind_text(rows.stmt, 1, d.serial_number.c_str(), -1, SQLITE_TRANSIENT);
        int rc = SQLITE_ROW;
        while ((rc = sqlite3_step(rows.stmt)) == SQLITE_ROW) {
            ++v.stored;
            auto local_time = rows.text(1);
            auto k = punch_index(local_time);
            if (!k || *k >= d.generated || rows.text(0) != punch_pin(*k) ||
                sqlite3_column_int(rows.stmt, 2) != punch_status(*k) ||
                sqlite3_column_int(rows.stmt, 3) != punch_verify(*k) ||
                rows.text(4) != attlog_line(*k)) {
                ++v.unexpected;
                example(fmt::format("unexpected row {} {}: {}", d.serial_number, local_time,
                                    rows.text(4)));
                continue;
            }
            if (sqlite3_column_int(rows.stmt, 5) != 0) {
                ++v.quarantined;
            }
            auto received = sqlite3_column_int64(rows.stmt, 6);
            if (copies[*k]++ == 0 || received < first_received[*k]) {
                first_received[*k] = received;
            }
        }
        if (rc != SQLITE_DONE) {
            return fail("reading punches");
        }
        for (std::uint64_t k = 0; k < d.generated; ++k) {
            const auto& ack = d.acknowledged[k];
            bool acknowledged = ack.at != 0;
            if (copies[k] > 1) {
                ++v.duplicated;
                v.extra_rows += copies[k] - 1;
                example(fmt::format("duplicated x{}: {} {}", copies[k], d.serial_number,
                                    attlog_line(k)));
            }
            if (acknowledged && copies[k] == 0) {
                ++v.lost;
                example(fmt::format("lost: {} {} (acknowledged at {}.{:03})", d.serial_number,
                                    attlog_line(k), ack.at / 1000, ack.at % 1000));
            }
            // Stored by an attempt whose OK never arrived: the server committed, then died
            // before answering (a later re-send, if any, was answered as a duplicate).
            if (copies[k] > 0 && (!acknowledged || first_received[k] < ack.request_sent_at)) {
                ++v.stored_unacknowledged;
            }
            if (!acknowledged) {
                ++v.unacknowledged;
            }
        }
    }
    return v;
}

} // namespace

int main(int argc, char** argv)
{
    std::string error;
    auto parsed = parse_options(argc, argv, error);
    if (!parsed) {
        fmt::print(stderr,
                   "crash_fleet: {}\nusage: crash_fleet --port PORT --db PATH [--devices N] "
                   "[--duration SECONDS] [--drain-timeout SECONDS] [--timeout-ms MS] "
                   "[--realtime-percent P] [--seed N]\n",
                   error);
        return 2;
    }
    const auto& o = *parsed;
    auto seed = o.seed.value_or(std::random_device{}());

    net::io_context io{1};
    fleet devices{io, o, seed};
    devices.run();

    const auto& s = devices.stats();
    std::uint64_t punches = 0;
    for (const auto& d : devices.devices()) {
        punches += d.generated;
    }
    fmt::print("crash_fleet: seed={} devices={} punches={} requests={} handshakes={} "
               "batch_uploads={} realtime_uploads={} lines_sent={}\n",
               seed, o.devices, punches, s.requests, s.handshakes, s.batch_uploads,
               s.realtime_uploads, s.lines_sent);
    fmt::print("crash_fleet: failed requests: refused={} reset={} closed={} partial={} "
               "timeout={} status_503={} other_status={} unexpected_ok={}{}\n",
               s.refused, s.reset, s.closed, s.partial, s.timeout, s.unavailable, s.other_status,
               s.unexpected_ok,
               s.unexpected_ok > 0 ? fmt::format(" (first: '{}')", s.first_unexpected_ok) : "");
    auto run = devices.run_seconds();
    fmt::print("crash_fleet: run {:.1f} s ({:.0f} acknowledged punches/s, {:.0f} requests/s), "
               "drain {:.1f} s\n",
               run, run > 0 ? static_cast<double>(s.acknowledged) / run : 0.0,
               run > 0 ? static_cast<double>(s.requests) / run : 0.0, devices.drain_seconds());

    auto v = verify(o.database, devices.devices());
    if (!v.error.empty()) {
        fmt::print(stderr, "crash_fleet: cannot verify: {}\n", v.error);
        return 2;
    }
    for (const auto& line : v.examples) {
        fmt::print("crash_fleet: {}\n", line);
    }
    bool drained = devices.drained();
    fmt::print("crash_fleet: acknowledged={} stored={} lost={} duplicated={} extra_rows={} "
               "stored_unacknowledged={} unacknowledged_at_end={} unexpected={} quarantined={} "
               "integrity={} drained={}\n",
               s.acknowledged, v.stored, v.lost, v.duplicated, v.extra_rows,
               v.stored_unacknowledged, v.unacknowledged, v.unexpected, v.quarantined, v.integrity,
               drained ? "yes" : "no");
    // A run that got nothing acknowledged proves nothing (every upload refused, say): a failure.
    if (s.acknowledged == 0) {
        fmt::print("crash_fleet: no punch was acknowledged\n");
    }
    bool ok = v.lost == 0 && v.duplicated == 0 && v.unexpected == 0 && v.integrity == "ok" &&
              drained && s.device_errors == 0 && s.acknowledged > 0;
    return ok ? 0 : 1;
}
