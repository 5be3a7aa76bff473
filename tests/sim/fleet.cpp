#include "tests/sim/fleet.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/text.hpp"
#include "protocol/zk_time.hpp"
#include "tests/sim/sim_wire.hpp"
#include "tests/sim/virtual_clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <thread>
#include <vector>

namespace adms::sim {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The most lines one ATTLOG upload carries, as real terminals do.
constexpr std::uint64_t batch_limit = 128;
// Backlog punches are spaced this far apart, ending at the device clock's time at start.
constexpr std::chrono::seconds backlog_spacing{30};
// The largest reply accepted: admsd's replies are under 41 KB (a full command batch).
constexpr std::size_t max_reply_bytes = 1 << 20;
// Errors of each kind logged per thread before only counting them.
constexpr int logged_errors_per_kind = 3;
// Seconds between progress lines (without --quiet).
constexpr auto progress_interval = 5s;

// A small, fast random generator (splitmix64): 8 bytes per device instead of mt19937's 2.5 KB.
struct random_source {
    using result_type = std::uint64_t;
    std::uint64_t state = 0;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    // The next 64 random bits.
    result_type operator()()
    {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1).
    double unit() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
    // Uniform in [low, high).
    double uniform(double low, double high) { return low + (high - low) * unit(); }
    // Exponentially distributed with mean `mean`.
    double exponential(double mean) { return -mean * std::log1p(-unit()); }
};

// Seconds as a steady-clock duration.
steady::duration seconds(double s)
{
    return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>{s});
}

// Milliseconds of a duration, with the sub-millisecond part.
double to_ms(std::chrono::nanoseconds d)
{
    return static_cast<double>(d.count()) / 1e6;
}

// A realtime punch waiting for its acknowledgement.
struct realtime_punch {
    std::uint64_t pin = 0; // unique per device and run: the punch's number
    std::chrono::local_seconds time{};
    bool sent = false;
};

// One virtual terminal.
// Thread safety: owned by its shard; only its coroutine and the shard, on the shard's thread,
// touch it.
struct device {
    // A device whose socket and timer run on `io`.
    explicit device(net::io_context& io) : socket{io}, timer{io} {}

    std::size_t index = 0;
    std::string serial_number;
    net::ip::address source; // the local address to bind, unspecified: the kernel chooses
    tcp::socket socket;
    net::steady_timer timer; // waits for the next action, or for a connection slot
    steady::time_point deadline = steady::time_point::max(); // of the request in flight
    bool timed_out = false;                                  // the deadline sweep closed the socket
    bool connected = false;                                  // `socket` holds an open connection
    bool holds_slot = false;                                 // counted against --max-connections
    bool slot_granted = false; // set by release_slot() for a waiting device
    bool idle_wait = false;    // waiting for its next action (a phase change wakes it)
    random_source random;
    virtual_clock clock;

    // Boot state.
    bool handshaken = false;      // since the last (re)boot
    bool ever_handshaken = false; // at least once in the run
    bool info_pending = true;     // the next poll carries INFO (first poll after boot)
    bool synced = false;          // applied at least one DateTime command
    double delay_s = 10;
    double error_delay_s = 30;
    std::uint64_t stamp_base = 0; // the handshake's ATTLOGStamp when numeric

    // Punches: the backlog is generated on the fly from its index (pins 1..backlog_total),
    // realtime punches follow (pins backlog_total+1, ...).
    std::uint64_t backlog_total = 0;
    std::uint64_t backlog_next = 0; // the first backlog punch not yet acknowledged
    std::uint64_t backlog_sent = 0; // backlog punches below this were sent at least once
    std::chrono::local_seconds backlog_end{};
    std::deque<realtime_punch> realtime;
    std::uint64_t realtime_generated = 0;
    std::string results; // devicecmd lines not yet acknowledged

    steady::time_point start_at, handshake_at, next_poll, next_punch, upload_at, results_at;
    std::string out; // the request being sent
    std::string in;  // the reply being read

    bool has_uploads() const { return backlog_next < backlog_total || !realtime.empty(); }
    bool has_work() const { return has_uploads() || !results.empty(); }
};

// How one request ended.
enum class exchange_status { ok, connect_failed, timeout, reset, closed, bad_reply, stopped };

// One request's reply. `body` points into the device's input buffer until its next request.
struct exchange_result {
    exchange_status status = exchange_status::ok;
    reply_head head;
    std::string_view body;
    sys_ns received_at{};         // the system clock when the reply's last byte was read
    double latency_ms = 0;        // first request byte written to last reply byte read
    steady::time_point started{}; // when the request's first byte was written
};

// What one shard counts; merged into the report at the end.
struct shard_stats {
    std::uint64_t requests = 0;
    std::uint64_t connections = 0;
    std::uint64_t punches_generated = 0;
    std::uint64_t punches_sent = 0;
    std::uint64_t punches_resent = 0;
    std::uint64_t punches_acknowledged = 0;
    std::uint64_t commands_executed = 0;
    std::uint64_t zone_mismatches = 0;
    std::uint64_t device_failures = 0;
    std::size_t devices_handshaken = 0;
    std::size_t devices_synced = 0;
    double last_delay_s = 0;
    error_counts errors;
    std::array<std::vector<double>, timed_step_count> latency_ms;
    std::vector<double> time_sync_ms;
};

// The shared timeline of a run.
struct timeline {
    steady::time_point start;
    sys_ns start_sys{};
    steady::time_point activity_end;
    steady::time_point drain_deadline;
};

// The phase of a shard.
enum class phase { active, draining, stopped };

// A share of the devices on one io_context run by one thread. Everything in it runs on that
// thread; other threads only post to it (request_drain, request_stop).
// Thread safety: post-only from other threads; the stats are read after run() returns.
class shard {
  public:
    shard(const sim_options& options, const tz::zone& zone, tcp::endpoint target,
          const timeline& times, std::size_t shard_index, std::size_t shard_count)
        : options_{options}, zone_{zone}, target_{target}, times_{times}, shard_index_{shard_index},
          shard_count_{shard_count}, phase_timer_{io_}, progress_timer_{io_}, deadline_timer_{io_}
    {
        max_connections_ = std::max<std::size_t>(1, options.max_connections / shard_count);
        timeout_ = seconds(options.timeout_s);
        for (std::size_t i = shard_index; i < options.devices; i += shard_count) {
            devices_.push_back(std::make_unique<device>(io_));
            setup_device(*devices_.back(), i);
        }
        stats_.last_delay_s = options.delay_s;
    }

    // What the shard counted (read after run() returned).
    const shard_stats& stats() const { return stats_; }
    // When the shard's activity ended, and when its last device ended.
    steady::time_point drain_started() const { return drain_started_; }
    steady::time_point finished() const { return finished_at_; }

    // Runs the devices until all have drained or the drain deadline passed.
    void run()
    {
        drain_started_ = times_.activity_end;
        schedule_phase(times_.activity_end, [this] { begin_drain(); });
        schedule_deadline_sweep();
        if (!options_.quiet) {
            schedule_progress();
        }
        for (auto& d : devices_) {
            net::co_spawn(io_, run_device(*d), [this, dev = d.get()](std::exception_ptr e) {
                if (e) {
                    ++stats_.device_failures;
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        fmt::print(stderr, "admsd-sim: device {} stopped: {}\n", dev->serial_number,
                                   ex.what());
                    }
                }
                close_connection(*dev);
                if (++finished_ == devices_.size()) {
                    finished_at_ = steady::now();
                    phase_ = phase::stopped;
                    phase_timer_.cancel();
                    progress_timer_.cancel();
                    deadline_timer_.cancel();
                }
            });
        }
        if (devices_.empty()) {
            finished_at_ = steady::now();
            phase_timer_.cancel();
            progress_timer_.cancel();
            deadline_timer_.cancel();
        }
        io_.run();
        for (const auto& d : devices_) {
            stats_.devices_handshaken += d->ever_handshaken ? 1 : 0;
            stats_.devices_synced += d->synced ? 1 : 0;
        }
    }

    // From any thread: end the activity now (SIGINT); the drain deadline moves with it.
    void request_drain()
    {
        net::post(io_, [this] {
            if (phase_ == phase::active) {
                auto now = steady::now();
                auto deadline = now + seconds(options_.drain_s);
                begin_drain(deadline);
            }
        });
    }

    // From any thread: end the run now (a second SIGINT).
    void request_stop()
    {
        net::post(io_, [this] { stop(); });
    }

  private:
    // Gives device `i` of the fleet its identity, clock and schedule.
    void setup_device(device& d, std::size_t i)
    {
        d.index = i;
        d.serial_number = device_serial_number(options_.sn_prefix, i);
        // Each device's random stream depends on the seed and its index only, so a run is the
        // same with any --threads.
        random_source seeder{options_.seed * 0x2545f4914f6cdd1dULL + i};
        d.random.state = seeder();
        auto offset =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>{
                d.random.uniform(-options_.clock_offset_s, options_.clock_offset_s)});
        double drift = d.random.uniform(-options_.drift_ppm, options_.drift_ppm);
        d.clock = virtual_clock{offset, drift, times_.start_sys};
        d.delay_s = options_.delay_s;
        d.start_at = times_.start + seconds(options_.ramp_s * static_cast<double>(i) /
                                            static_cast<double>(options_.devices));
        d.handshake_at = d.start_at;
        if (options_.punch_interval_s > 0) {
            d.next_punch = d.start_at + seconds(d.random.exponential(options_.punch_interval_s));
        }
        d.backlog_total = options_.backlog;
        d.backlog_end = std::chrono::floor<std::chrono::seconds>(
            d.clock.read(times_.start_sys, true_local(times_.start_sys)));
        stats_.punches_generated += d.backlog_total;
        if (options_.source_addresses > 1) {
            d.source = net::ip::address_v4{static_cast<net::ip::address_v4::uint_type>(
                (127u << 24) + 1 + i % options_.source_addresses)};
        }
    }

    // The true local wall time of the zone at `t`.
    local_ns true_local(sys_ns t) const
    {
        auto whole = std::chrono::floor<std::chrono::seconds>(t);
        return local_ns{zone_.to_local(whole)} + (t - whole);
    }

    // The system-clock instant of a steady-clock instant of this run.
    sys_ns to_sys(steady::time_point t) const
    {
        return times_.start_sys +
               std::chrono::duration_cast<std::chrono::nanoseconds>(t - times_.start);
    }

    // Runs `action` at `at` (a later call replaces the pending one).
    template <class Action>
    void schedule_phase(steady::time_point at, Action action)
    {
        phase_timer_.expires_at(at);
        phase_timer_.async_wait([action](boost::system::error_code ec) {
            if (!ec) {
                action();
            }
        });
    }

    // Ends the activity: no more punches; devices finish when they have nothing left to send.
    void begin_drain(std::optional<steady::time_point> deadline = std::nullopt)
    {
        if (phase_ != phase::active) {
            return;
        }
        phase_ = phase::draining;
        drain_started_ = steady::now();
        schedule_phase(deadline.value_or(times_.drain_deadline), [this] { stop(); });
        if (!options_.quiet && shard_index_ == 0) {
            fmt::print(stderr, "admsd-sim: activity over, draining (at most {} s)\n",
                       options_.drain_s);
        }
        for (auto& d : devices_) {
            if (d->idle_wait) {
                d->timer.cancel(); // re-evaluate: an idle device with nothing to send ends
            }
        }
    }

    // Ends the run: every wait and every connection is cancelled; devices end.
    void stop()
    {
        if (phase_ == phase::stopped) {
            return;
        }
        phase_ = phase::stopped;
        phase_timer_.cancel();
        progress_timer_.cancel();
        deadline_timer_.cancel();
        waiters_.clear();
        for (auto& d : devices_) {
            boost::system::error_code ignored;
            d->timer.cancel();
            disarm_watchdog(*d);
            d->socket.close(ignored);
        }
    }

    // Prints a progress line every few seconds (without --quiet).
    void schedule_progress()
    {
        progress_timer_.expires_after(progress_interval);
        progress_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || phase_ == phase::stopped) {
                return;
            }
            auto elapsed = std::chrono::duration<double>(steady::now() - times_.start).count();
            fmt::print(stderr,
                       "admsd-sim{}: {:.0f} s: {} requests ({:.0f}/s), {} punches acknowledged of "
                       "{}, {} errors, {} connections open\n",
                       shard_count_ > 1 ? fmt::format(" [thread {}]", shard_index_) : "", elapsed,
                       stats_.requests, static_cast<double>(stats_.requests) / elapsed,
                       stats_.punches_acknowledged, stats_.punches_generated, stats_.errors.total(),
                       in_use_);
            schedule_progress();
        });
    }

    // Logs the first few failures of each kind (then only counts them): `kind` is the report's
    // error kind, `endpoint` where it happened.
    void log_error(const device& d, std::string_view endpoint, std::string_view kind,
                   std::string_view what)
    {
        auto& logged = logged_errors_[std::string{kind}];
        if (options_.quiet || logged >= logged_errors_per_kind) {
            return;
        }
        ++logged;
        fmt::print(stderr, "admsd-sim: {} {}: {}{}\n", d.serial_number, endpoint, what,
                   logged == logged_errors_per_kind
                       ? fmt::format(" (further '{}' errors only counted)", kind)
                       : "");
    }

    // Waits for a connection slot; false when the run stopped first.
    net::awaitable<bool> acquire_slot(device& d)
    {
        if (in_use_ < max_connections_ && waiters_.empty()) {
            ++in_use_;
            d.holds_slot = true;
            co_return true;
        }
        waiters_.push_back(&d);
        d.slot_granted = false;
        d.timer.expires_at(steady::time_point::max());
        co_await d.timer.async_wait(net::as_tuple(net::use_awaitable));
        if (!d.slot_granted) {
            std::erase(waiters_, &d);
            co_return false;
        }
        d.holds_slot = true;
        co_return true;
    }

    // Gives the device's slot to the first waiting device, if any.
    void release_slot(device& d)
    {
        if (!d.holds_slot) {
            return;
        }
        d.holds_slot = false;
        if (!waiters_.empty()) {
            auto* next = waiters_.front();
            waiters_.pop_front();
            next->slot_granted = true;
            next->timer.cancel();
        } else {
            --in_use_;
        }
    }

    // Closes the device's connection, if any, and gives its slot away.
    void close_connection(device& d)
    {
        boost::system::error_code ignored;
        d.socket.close(ignored);
        d.connected = false;
        release_slot(d);
    }

    // Request deadlines: one sweep every 100 ms closes the sockets of requests past their deadline
    // (their pending operations then fail, and `timed_out` says why). Cheaper than a timer per
    // request, which costs two timer-heap updates per request; 100 ms is precise enough for a
    // timeout.

    // Gives the device's request a deadline `after` from now.
    void arm_watchdog(device& d, steady::duration after)
    {
        d.timed_out = false;
        d.deadline = steady::now() + after;
    }

    // The device's request is over: no deadline.
    void disarm_watchdog(device& d) { d.deadline = steady::time_point::max(); }

    // The next sweep in 100 ms.
    void schedule_deadline_sweep()
    {
        deadline_timer_.expires_after(100ms);
        deadline_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || phase_ == phase::stopped) {
                return;
            }
            auto now = steady::now();
            for (auto& d : devices_) {
                if (d->deadline <= now) {
                    d->deadline = steady::time_point::max();
                    d->timed_out = true;
                    boost::system::error_code ignored;
                    d->socket.close(ignored);
                }
            }
            schedule_deadline_sweep();
        });
    }

    // Starts a request in d.out: the method; the caller appends the target.
    void begin_request(device& d, std::string_view method)
    {
        d.out.clear();
        d.out += method;
        d.out += ' ';
    }

    // Ends the request line and writes the headers (and the body, for a POST).
    void finish_request(device& d, std::string_view body, bool post)
    {
        fmt::format_to(std::back_inserter(d.out),
                       " HTTP/1.1\r\nHost: {}\r\nUser-Agent: iClock Proxy/1.09\r\nAccept: */*\r\n",
                       options_.target);
        if (!options_.keep_alive) {
            d.out += "Connection: close\r\n";
        }
        if (post) {
            fmt::format_to(std::back_inserter(d.out), "Content-Length: {}\r\n", body.size());
        }
        d.out += "\r\n";
        d.out += body;
    }

    // Keeps a latency sample of a request started at `started`, unless it started within
    // --warmup of the run's start (then only the counts include it).
    void record(timed_step step, steady::time_point started, double ms)
    {
        if (started >= times_.start + seconds(options_.warmup_s)) {
            stats_.latency_ms[static_cast<std::size_t>(step)].push_back(ms);
        }
    }

    // Opens a connection for `d` (a slot first); a failure is counted and logged.
    net::awaitable<exchange_status> connect(device& d, timed_step step)
    {
        auto waiting = steady::now();
        if (!co_await acquire_slot(d)) {
            co_return exchange_status::stopped;
        }
        record(timed_step::connection_wait, waiting, to_ms(steady::now() - waiting));
        if (phase_ == phase::stopped) {
            release_slot(d);
            co_return exchange_status::stopped;
        }
        boost::system::error_code ec;
        d.socket.open(target_.protocol(), ec);
        if (!ec && !d.source.is_unspecified()) {
            // The port is chosen at connect time for the whole 4-tuple, not at bind time for
            // the address alone: without it each source address would get ~28 000 ports in all.
            int on = 1;
            if (::setsockopt(d.socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
                             sizeof on) != 0) {
                ec.assign(errno, boost::system::system_category());
            } else {
                d.socket.bind(tcp::endpoint{d.source, 0}, ec);
            }
        }
        if (ec) {
            ++stats_.errors.connect;
            log_error(d, step_name(step), "connect",
                      fmt::format("cannot open a socket: {}", ec.message()));
            close_connection(d);
            co_return exchange_status::connect_failed;
        }
        arm_watchdog(d, timeout_);
        auto started = steady::now();
        auto [connect_ec] =
            co_await d.socket.async_connect(target_, net::as_tuple(net::use_awaitable));
        if (phase_ == phase::stopped) {
            close_connection(d);
            co_return exchange_status::stopped;
        }
        if (connect_ec) {
            bool timed_out = d.timed_out;
            disarm_watchdog(d);
            close_connection(d);
            if (timed_out) {
                ++stats_.errors.timeout;
                log_error(d, step_name(step), "timeout", "connect timed out");
                co_return exchange_status::timeout;
            }
            ++stats_.errors.connect;
            log_error(d, step_name(step), "connect",
                      fmt::format("connect failed: {}", connect_ec.message()));
            co_return exchange_status::connect_failed;
        }
        ++stats_.connections;
        record(timed_step::connect, started, to_ms(steady::now() - started));
        d.connected = true;
        co_return exchange_status::ok;
    }

    // Sends d.out and reads the reply. Counts the request (once it ended), its latency (first
    // byte written to last byte read) and any failure. A kept-alive connection the server closed
    // meanwhile is replaced once, silently, when nothing of the reply had arrived.
    net::awaitable<exchange_result> exchange(device& d, timed_step step)
    {
        auto r = co_await exchange_once(d, step);
        if (r.status != exchange_status::stopped) {
            ++stats_.requests;
        }
        co_return r;
    }

    // exchange() without the request count.
    net::awaitable<exchange_result> exchange_once(device& d, timed_step step)
    {
        exchange_result r;
        for (int attempt = 0;; ++attempt) {
            r = exchange_result{};
            bool reused = d.connected;
            if (!d.connected) {
                r.status = co_await connect(d, step);
                if (r.status != exchange_status::ok) {
                    co_return r;
                }
            }
            arm_watchdog(d, timeout_);
            auto started = steady::now();
            auto [write_ec, written] = co_await net::async_write(d.socket, net::buffer(d.out),
                                                                 net::as_tuple(net::use_awaitable));
            boost::system::error_code read_ec = write_ec;
            std::optional<std::size_t> head_end;
            std::optional<std::size_t> reply_end;
            d.in.clear();
            while (!read_ec && !reply_end) {
                if (d.in.capacity() - d.in.size() < 512) {
                    d.in.reserve(std::max<std::size_t>(1024, 2 * d.in.capacity()));
                }
                auto old = d.in.size();
                d.in.resize(d.in.capacity());
                auto [ec, n] = co_await d.socket.async_read_some(
                    net::buffer(d.in.data() + old, d.in.size() - old),
                    net::as_tuple(net::use_awaitable));
                d.in.resize(old + n);
                read_ec = ec;
                if (!head_end) {
                    head_end = find_head_end(d.in);
                    if (head_end) {
                        auto head = parse_reply_head(std::string_view{d.in}.substr(0, *head_end));
                        if (!head || head->chunked) {
                            r.status = exchange_status::bad_reply;
                            break;
                        }
                        r.head = *head;
                    }
                }
                if (head_end && r.head.content_length) {
                    if (d.in.size() >= *head_end + *r.head.content_length) {
                        reply_end = *head_end + *r.head.content_length;
                    }
                } else if (head_end && (r.head.status == 204 || r.head.status == 304)) {
                    reply_end = *head_end;
                } else if (head_end && read_ec == net::error::eof) {
                    reply_end = d.in.size(); // no Content-Length: the body ends at the close
                }
                if (!reply_end && d.in.size() > max_reply_bytes) {
                    r.status = exchange_status::bad_reply;
                    break;
                }
            }
            auto finished = steady::now();
            r.received_at = sys_ns{std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())};
            if (phase_ == phase::stopped) {
                disarm_watchdog(d);
                close_connection(d);
                r.status = exchange_status::stopped;
                co_return r;
            }
            if (reply_end) {
                r.status = exchange_status::ok;
                r.body = std::string_view{d.in}.substr(*head_end, *reply_end - *head_end);
                r.latency_ms = to_ms(finished - started);
                r.started = started;
                // A poll's sample is recorded by poll(), which knows whether the reply set the
                // clock (a server may hold such a reply until the whole second it carries).
                if (step != timed_step::getrequest) {
                    record(step, started, r.latency_ms);
                }
                if (r.head.status != 200) {
                    ++stats_.errors.http[r.head.status];
                    log_error(d, step_name(step), fmt::format("http_{}", r.head.status),
                              fmt::format("HTTP {}", r.head.status));
                }
                co_await end_connection(d, r.head.close);
                co_return r;
            }
            bool timed_out = d.timed_out;
            disarm_watchdog(d);
            close_connection(d);
            if (r.status == exchange_status::bad_reply) {
                ++stats_.errors.bad_reply;
                log_error(d, step_name(step), "bad_reply", "malformed HTTP reply");
                co_return r;
            }
            if (reused && attempt == 0 && !timed_out && d.in.empty()) {
                continue; // the server had closed the idle connection: open a new one
            }
            if (timed_out) {
                r.status = exchange_status::timeout;
                ++stats_.errors.timeout;
                log_error(d, step_name(step), "timeout", "no complete reply in time");
            } else if (read_ec == net::error::eof) {
                r.status = exchange_status::closed;
                ++stats_.errors.closed;
                log_error(d, step_name(step), "closed", "closed before the reply was complete");
            } else {
                r.status = exchange_status::reset;
                ++stats_.errors.reset;
                log_error(d, step_name(step), "reset", read_ec.message());
            }
            co_return r;
        }
    }

    // After a complete reply: keep the connection (keep-alive, nobody waiting for a slot) or
    // close it. Closing waits for the server's own close first, so the server side holds the
    // TIME_WAIT state and this side's ephemeral port is free at once.
    net::awaitable<void> end_connection(device& d, bool server_closes)
    {
        if (options_.keep_alive && !server_closes) {
            disarm_watchdog(d);
            if (!waiters_.empty()) {
                close_connection(d);
            }
            co_return;
        }
        arm_watchdog(d, std::min<steady::duration>(timeout_, 1s));
        std::array<char, 256> sink;
        for (int reads = 0; reads < 4; ++reads) {
            auto [ec, n] = co_await d.socket.async_read_some(net::buffer(sink),
                                                             net::as_tuple(net::use_awaitable));
            if (ec) {
                break;
            }
        }
        disarm_watchdog(d);
        close_connection(d);
    }

    // How long to wait before retrying after a failed request: Retry-After, else the
    // handshake's ErrorDelay; at most 1 s with --fast-retry.
    steady::duration retry_delay(const device& d, const exchange_result& r) const
    {
        double s = d.error_delay_s;
        if (r.status == exchange_status::ok && r.head.retry_after_s) {
            s = static_cast<double>(*r.head.retry_after_s);
        }
        if (options_.fast_retry) {
            s = std::min(s, 1.0);
        }
        return seconds(std::max(s, 0.05));
    }

    // Waits until `at` unless a phase change or the end of the run wakes the device first.
    net::awaitable<void> idle_until(device& d, steady::time_point at)
    {
        d.idle_wait = true;
        d.timer.expires_at(at);
        co_await d.timer.async_wait(net::as_tuple(net::use_awaitable));
        d.idle_wait = false;
    }

    // The punches whose (exponentially spaced) time has come, taken on the device's clock at
    // their own time (not when this runs). People punch whether the device is online or not:
    // punches taken before the first handshake wait for it.
    void generate_punches(device& d, steady::time_point now)
    {
        if (options_.punch_interval_s <= 0) {
            return;
        }
        while (d.next_punch <= now && d.next_punch < times_.activity_end) {
            auto at = to_sys(d.next_punch);
            auto local = d.clock.read(at, true_local(at));
            ++d.realtime_generated;
            d.realtime.push_back({d.backlog_total + d.realtime_generated,
                                  std::chrono::floor<std::chrono::seconds>(local), false});
            ++stats_.punches_generated;
            d.next_punch += seconds(d.random.exponential(options_.punch_interval_s));
        }
    }

    // One terminal's life: start (spread over --ramp), handshake, then polls, uploads and
    // command results in turn, until the drain finds it with nothing left to send.
    net::awaitable<void> run_device(device& d)
    {
        co_await idle_until(d, d.start_at);
        while (phase_ != phase::stopped) {
            auto now = steady::now();
            if (phase_ == phase::active) {
                generate_punches(d, now);
            } else if (!d.has_work()) {
                break; // drained
            }
            // Results first: a device reports what it executed before anything else (and
            // before rebooting).
            if (!d.results.empty() && now >= d.results_at) {
                co_await send_results(d);
                continue;
            }
            if (!d.handshaken) {
                if (now >= d.handshake_at) {
                    co_await handshake(d);
                } else {
                    co_await idle_until(d, d.handshake_at);
                }
                continue;
            }
            if (now >= d.next_poll) {
                co_await poll(d);
                continue;
            }
            if (d.has_uploads() && now >= d.upload_at) {
                co_await upload(d);
                continue;
            }
            auto next = d.next_poll;
            if (phase_ == phase::active && options_.punch_interval_s > 0) {
                next = std::min(next, d.next_punch);
            }
            if (d.has_uploads()) {
                next = std::min(next, d.upload_at);
            }
            if (!d.results.empty()) {
                next = std::min(next, d.results_at);
            }
            co_await idle_until(d, next);
        }
    }

    // GET /iclock/cdata?...&options=all: the boot handshake.
    net::awaitable<void> handshake(device& d)
    {
        begin_request(d, "GET");
        fmt::format_to(std::back_inserter(d.out),
                       "/iclock/cdata?SN={}&options=all&pushver=2.4.1&language=69",
                       d.serial_number);
        finish_request(d, {}, false);
        auto r = co_await exchange(d, timed_step::handshake);
        if (r.status == exchange_status::stopped) {
            co_return;
        }
        auto now = steady::now();
        if (r.status == exchange_status::ok && r.head.status == 200) {
            auto options = parse_handshake_reply(r.body);
            if (options && options->serial_number == d.serial_number) {
                apply_handshake(d, *options, r.received_at, now);
                co_return;
            }
            if (options_.stub_server) {
                // A stub (nginx answering OK in the benchmarks) has no options to give.
                handshake_options none;
                none.serial_number = d.serial_number;
                apply_handshake(d, none, r.received_at, now);
                co_return;
            }
            ++stats_.errors.bad_reply;
            log_error(d, "handshake", "bad_reply", "the reply is not GET OPTION FROM: <SN> ...");
        }
        d.handshake_at = now + retry_delay(d, r);
    }

    // Takes the handshake's options (Delay with --delay server, ErrorDelay, the stamp) and
    // schedules the first poll; counts a TimeZone that does not match --zone.
    void apply_handshake(device& d, const handshake_options& h, sys_ns received_at,
                         steady::time_point now)
    {
        d.handshaken = true;
        d.ever_handshaken = true;
        if (options_.delay_from_server && h.delay && *h.delay > 0) {
            d.delay_s = *h.delay;
            stats_.last_delay_s = d.delay_s;
        }
        if (h.error_delay && *h.error_delay > 0) {
            d.error_delay_s = *h.error_delay;
        }
        if (auto stamp = protocol::text::parse_integer<std::uint64_t>(h.attlog_stamp)) {
            d.stamp_base = std::max(d.stamp_base, *stamp);
        }
        if (h.time_zone) {
            auto expected = zone_.utc_offset(std::chrono::floor<std::chrono::seconds>(received_at));
            if (time_zone_offset(*h.time_zone) !=
                std::chrono::duration_cast<std::chrono::minutes>(expected)) {
                if (stats_.zone_mismatches++ == 0) {
                    log_error(d, "handshake", "zone",
                              fmt::format("TimeZone={} is not the offset of --zone {} now",
                                          *h.time_zone, options_.zone));
                }
            }
        }
        // The first poll at a random point of the first Delay spreads the fleet's polls.
        d.next_poll = now + seconds(d.random.uniform(0, d.delay_s));
        d.upload_at = now;
    }

    // GET /iclock/getrequest: poll, then execute the commands of the reply.
    net::awaitable<void> poll(device& d)
    {
        begin_request(d, "GET");
        fmt::format_to(std::back_inserter(d.out), "/iclock/getrequest?SN={}", d.serial_number);
        if (d.info_pending) {
            // As a booting terminal: firmware, users, fingerprints, punches, IP address, ...
            auto info = fmt::format("Ver 6.60,0,0,{},192.168.{}.{},10,7,12,0,111", d.backlog_total,
                                    1 + d.index / 250 % 250, 1 + d.index % 250);
            d.out += "&INFO=";
            d.out += url_encode(info);
        }
        finish_request(d, {}, false);
        auto r = co_await exchange(d, timed_step::getrequest);
        if (r.status == exchange_status::stopped) {
            co_return;
        }
        auto now = steady::now();
        bool ok = r.status == exchange_status::ok && r.head.status == 200;
        // A fixed schedule (not "Delay after the reply") keeps the offered load when the server
        // slows down; a device that fell behind does not burst to catch up.
        d.next_poll += seconds(d.delay_s);
        if (!ok) {
            d.next_poll = std::min(d.next_poll, now + retry_delay(d, r));
        }
        if (d.next_poll <= now) {
            d.next_poll = now + seconds(d.delay_s);
        }
        if (!ok) {
            co_return;
        }
        d.info_pending = false;
        auto commands = parse_command_reply(r.body);
        if (!commands.rejected.empty()) {
            ++stats_.errors.bad_reply;
            log_error(d, "getrequest", "bad_reply",
                      fmt::format("line {} is not a command: {}",
                                  commands.rejected.front().line_number,
                                  commands.rejected.front().reason));
        }
        bool sets_clock = std::any_of(commands.records.begin(), commands.records.end(),
                                      [](const auto& c) { return datetime_command_value(c.text); });
        record(sets_clock ? timed_step::getrequest_time_sync : timed_step::getrequest, r.started,
               r.latency_ms);
        bool reboot = false;
        for (const auto& command : commands.records) {
            int code = execute(d, command.text, r.received_at, reboot);
            d.results += render_command_result(command.id, code, command_result_name(command.text));
            d.results += '\n';
            if (command_result_name(command.text) == "INFO") {
                d.results += fmt::format("~DeviceName=admsd-sim\nFWVersion=Ver 6.60\n"
                                         "UserCount=0\nTransactionCount={}\n",
                                         d.backlog_total + d.realtime_generated);
            }
            ++stats_.commands_executed;
        }
        d.results_at = now;
        if (reboot) {
            // Reports the results, then boots again: handshake, and INFO on the next poll.
            d.handshaken = false;
            d.info_pending = true;
            d.handshake_at = now;
        }
    }

    // Executes one command; returns its Return code.
    int execute(device& d, std::string_view text, sys_ns received_at, bool& reboot)
    {
        if (auto value = datetime_command_value(text)) {
            auto decoded = protocol::decode_zk_datetime(*value);
            if (!decoded) {
                log_error(d, "getrequest", "datetime",
                          fmt::format("impossible DateTime={}", *value));
                return -1;
            }
            auto error = d.clock.set(local_ns{*decoded}, received_at, true_local(received_at));
            stats_.time_sync_ms.push_back(to_ms(error));
            d.synced = true;
            return 0;
        }
        if (protocol::is_reboot_command(text)) {
            reboot = true;
        }
        return 0;
    }

    // POST /iclock/devicecmd with the results not yet acknowledged.
    net::awaitable<void> send_results(device& d)
    {
        begin_request(d, "POST");
        fmt::format_to(std::back_inserter(d.out), "/iclock/devicecmd?SN={}", d.serial_number);
        finish_request(d, d.results, true);
        auto r = co_await exchange(d, timed_step::devicecmd);
        if (r.status == exchange_status::stopped) {
            co_return;
        }
        if (r.status == exchange_status::ok && r.head.status == 200) {
            d.results.clear();
            co_return;
        }
        d.results_at = steady::now() + retry_delay(d, r);
    }

    // POST /iclock/cdata?table=ATTLOG: the oldest backlog batch (up to 128 lines), else the
    // realtime punches waiting (up to 128; one line unless earlier uploads failed).
    net::awaitable<void> upload(device& d)
    {
        body_.clear();
        std::uint64_t lines = 0;
        std::uint64_t last_pin = 0;
        auto add_line = [this](std::uint64_t pin, std::chrono::local_seconds time) {
            fmt::format_to(std::back_inserter(body_), "{}\t{}\t0\t1\t0\t0\t0\n", pin,
                           protocol::format_civil_time(time));
        };
        bool backlog = d.backlog_next < d.backlog_total;
        if (backlog) {
            lines = std::min(batch_limit, d.backlog_total - d.backlog_next);
            for (std::uint64_t k = d.backlog_next; k < d.backlog_next + lines; ++k) {
                add_line(k + 1, d.backlog_end - backlog_spacing *
                                                    static_cast<std::int64_t>(d.backlog_total - k));
            }
            last_pin = d.backlog_next + lines;
            auto resent = std::min(d.backlog_sent, d.backlog_next + lines) -
                          std::min(d.backlog_sent, d.backlog_next);
            stats_.punches_resent += resent;
            stats_.punches_sent += lines - resent;
            d.backlog_sent = std::max(d.backlog_sent, d.backlog_next + lines);
        } else {
            // Normally the one punch just taken; after failures, those that piled up meanwhile.
            lines = std::min<std::uint64_t>(batch_limit, d.realtime.size());
            for (std::uint64_t i = 0; i < lines; ++i) {
                auto& punch = d.realtime[i];
                add_line(punch.pin, punch.time);
                last_pin = punch.pin;
                ++(punch.sent ? stats_.punches_resent : stats_.punches_sent);
                punch.sent = true;
            }
        }
        begin_request(d, "POST");
        fmt::format_to(std::back_inserter(d.out), "/iclock/cdata?SN={}&table=ATTLOG&Stamp={}",
                       d.serial_number, d.stamp_base + last_pin);
        finish_request(d, body_, true);
        auto r = co_await exchange(d, timed_step::attlog);
        if (r.status == exchange_status::stopped) {
            co_return;
        }
        auto now = steady::now();
        if (r.status == exchange_status::ok &&
            is_attlog_acknowledgement(r.head.status, r.body, lines)) {
            stats_.punches_acknowledged += lines;
            if (backlog) {
                d.backlog_next += lines;
            } else {
                d.realtime.erase(d.realtime.begin(),
                                 d.realtime.begin() + static_cast<std::ptrdiff_t>(lines));
            }
            d.upload_at = now;
            co_return;
        }
        if (r.status == exchange_status::ok && r.head.status == 200) {
            ++stats_.errors.bad_reply;
            log_error(d, "attlog", "bad_reply",
                      fmt::format("200 without OK:{}: '{}'", lines, r.body.substr(0, 40)));
        }
        d.upload_at = now + retry_delay(d, r);
    }

    const sim_options& options_;
    const tz::zone& zone_;
    tcp::endpoint target_;
    const timeline& times_;
    std::size_t shard_index_;
    std::size_t shard_count_;
    net::io_context io_{1};
    net::steady_timer phase_timer_;
    net::steady_timer progress_timer_;
    net::steady_timer deadline_timer_;
    std::vector<std::unique_ptr<device>> devices_;
    std::size_t finished_ = 0;
    phase phase_ = phase::active;
    steady::time_point drain_started_{};
    steady::time_point finished_at_{};
    std::size_t max_connections_ = 1;
    std::size_t in_use_ = 0;
    std::deque<device*> waiters_;
    steady::duration timeout_{};
    std::string body_; // scratch for upload bodies (built and copied before any co_await)
    std::map<std::string, int, std::less<>> logged_errors_;
    shard_stats stats_;
};

// The target's address: the first IPv4 address, else the first one.
std::optional<tcp::endpoint> resolve(const sim_options& options, std::string& error)
{
    net::io_context io;
    tcp::resolver resolver{io};
    boost::system::error_code ec;
    auto results = resolver.resolve(options.target_host, std::to_string(options.target_port), ec);
    if (ec || results.empty()) {
        error = fmt::format("cannot resolve '{}': {}", options.target_host,
                            ec ? ec.message() : "no address");
        return std::nullopt;
    }
    std::optional<tcp::endpoint> chosen;
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4()) {
            return entry.endpoint();
        }
        if (!chosen) {
            chosen = entry.endpoint();
        }
    }
    return chosen;
}

} // namespace

fleet_outcome run_fleet(const sim_options& options, const tz::zone& zone)
{
    fleet_outcome outcome;
    auto target = resolve(options, outcome.error);
    if (!target) {
        return outcome;
    }
    if (options.source_addresses > 1 &&
        !(target->address().is_v4() && target->address().is_loopback())) {
        outcome.error = fmt::format("--source-addresses above 1 needs a 127.x.x.x target, not {}",
                                    target->address().to_string());
        return outcome;
    }

    timeline times;
    times.start = steady::now();
    times.start_sys = sys_ns{std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch())};
    times.activity_end = times.start + seconds(options.duration_s);
    times.drain_deadline = times.activity_end + seconds(options.drain_s);

    std::vector<std::unique_ptr<shard>> shards;
    for (unsigned i = 0; i < options.threads; ++i) {
        shards.push_back(
            std::make_unique<shard>(options, zone, *target, times, i, options.threads));
    }
    if (!options.quiet) {
        fmt::print(stderr,
                   "admsd-sim: {} devices ({}...) against {} ({}), {} s of activity, drain at "
                   "most {} s\n",
                   options.devices, device_serial_number(options.sn_prefix, 0),
                   target->address().to_string() + ":" + std::to_string(target->port()),
                   options.keep_alive ? "keep-alive" : "Connection: close", options.duration_s,
                   options.drain_s);
    }

    // SIGINT/SIGTERM: the first ends the activity (then the drain), the second the run. The
    // main thread waits for signals and for the shards, which run on threads of their own.
    net::io_context main_io{1};
    net::signal_set signals{main_io, SIGINT, SIGTERM};
    int signals_seen = 0;
    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code ec, int) {
            if (ec) {
                return;
            }
            bool first = signals_seen++ == 0;
            for (auto& s : shards) {
                if (first) {
                    s->request_drain();
                } else {
                    s->request_stop();
                }
            }
            wait_signal();
        });
    };
    wait_signal();
    std::size_t shards_running = shards.size();
    std::vector<std::thread> threads;
    for (auto& s : shards) {
        threads.emplace_back([&] {
            s->run();
            net::post(main_io, [&] {
                if (--shards_running == 0) {
                    signals.cancel();
                }
            });
        });
    }
    main_io.run();
    for (auto& t : threads) {
        t.join();
    }

    report r;
    r.target = options.target;
    r.devices = options.devices;
    r.keep_alive = options.keep_alive;
    r.seed = options.seed;
    r.delay_s = options.delay_s;
    steady::time_point drain_started = times.activity_end;
    steady::time_point finished = times.start;
    for (const auto& s : shards) {
        drain_started = std::min(drain_started, s->drain_started());
        finished = std::max(finished, s->finished());
    }
    std::array<std::vector<double>, timed_step_count> latencies;
    std::vector<double> time_sync;
    for (auto& s : shards) {
        const auto& st = s->stats();
        r.requests += st.requests;
        r.connections += st.connections;
        r.punches_generated += st.punches_generated;
        r.punches_sent += st.punches_sent;
        r.punches_resent += st.punches_resent;
        r.punches_acknowledged += st.punches_acknowledged;
        r.commands_executed += st.commands_executed;
        r.zone_mismatches += st.zone_mismatches;
        r.devices_handshaken += st.devices_handshaken;
        r.devices_synced += st.devices_synced;
        r.delay_s = st.last_delay_s;
        r.errors.add(st.errors);
        for (std::size_t i = 0; i < timed_step_count; ++i) {
            latencies[i].insert(latencies[i].end(), st.latency_ms[i].begin(),
                                st.latency_ms[i].end());
        }
        time_sync.insert(time_sync.end(), st.time_sync_ms.begin(), st.time_sync_ms.end());
    }
    r.duration_s = std::chrono::duration<double>(drain_started - times.start).count();
    r.drain_s = std::max(0.0, std::chrono::duration<double>(finished - drain_started).count());
    r.drained = r.punches_acknowledged >= r.punches_generated;
    for (std::size_t i = 0; i < timed_step_count; ++i) {
        r.latency_ms[i] = summarize(latencies[i]);
    }
    double signed_sum = 0;
    for (auto& e : time_sync) {
        signed_sum += e;
        e = std::abs(e);
    }
    r.time_sync_mean_ms =
        time_sync.empty() ? 0 : signed_sum / static_cast<double>(time_sync.size());
    r.time_sync_abs_ms = summarize(time_sync);
    // A run in which no device ever reached the server proves nothing, even without punches.
    r.exit_status = r.drained && r.devices_handshaken > 0 ? 0 : 1;
    outcome.result = std::move(r);
    return outcome;
}

} // namespace adms::sim
