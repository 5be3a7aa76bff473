// End-to-end: the real application on 127.0.0.1:0 under network abuse: thousands of idle
// connections, slowloris clients, oversized headers and bodies, a burst of handshakes, pipelined
// and half-closed connections, resets in the middle of a reply and a process out of descriptors.
#include "protocol/civil_time.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"
#include "tests/sanitizers.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <regex>
#include <set>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::device_request;
using adms::test::heap_in_use;
using adms::test::parse_replies;
using adms::test::running_server;
using adms::test::temp_dir;

namespace {

server::settings utc_settings()
{
    server::settings s;
    s.time_zone = "UTC";
    return s;
}

// What a client read: every byte, and whether the server closed (EOF or reset) by the deadline.
struct received {
    std::string bytes;
    bool closed = false;
};

// A client TCP connection to 127.0.0.1, closed at scope exit.
class client_socket {
  public:
    // Connects (blocking; on loopback the kernel completes it before the server accepts).
    // `receive_buffer` > 0 sets SO_RCVBUF first, to make the server's writes wait for us.
    explicit client_socket(unsigned short port, int receive_buffer = 0)
    {
        open(receive_buffer);
        connect_to(port);
    }
    // A socket not connected yet: connect_to() later.
    struct unconnected_t {};
    static constexpr unconnected_t unconnected{};
    explicit client_socket(unconnected_t) { open(0); }
    client_socket(client_socket&& other) noexcept : fd_{std::exchange(other.fd_, -1)} {}
    client_socket& operator=(client_socket&&) = delete;
    ~client_socket()
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    void connect_to(unsigned short port)
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            auto error = errno;
            ::close(fd_);
            fd_ = -1;
            throw std::system_error(error, std::generic_category(), "connect()");
        }
    }

    int fd() const { return fd_; }

    // Sends every byte; false when the server has closed or reset the connection.
    bool send_all(std::string_view bytes)
    {
        while (!bytes.empty()) {
            auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Ends our side of the stream (FIN) and keeps reading.
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

    // Closes with SO_LINGER 0: the server gets a reset instead of an orderly close.
    void reset()
    {
        linger hard{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        ::close(fd_);
        fd_ = -1;
    }

    // Reads until the server closes (EOF or reset) or `timeout` passes.
    received read_until_closed(milliseconds timeout)
    {
        received result;
        auto deadline = steady_clock::now() + timeout;
        while (!result.closed && steady_clock::now() < deadline) {
            wait_readable(deadline, result);
        }
        return result;
    }

    // Waits until the server sends something or closes, or until `deadline`; appends what
    // arrived to `into` and sets `into.closed` on EOF or reset.
    void wait_readable(steady_clock::time_point deadline, received& into)
    {
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max(left.count(), milliseconds::rep{0}))) <= 0) {
            return;
        }
        char buffer[65536];
        auto n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) {
            into.bytes.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            into.closed = true;
        }
    }

  private:
    void open(int receive_buffer)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            throw std::system_error(errno, std::generic_category(), "socket()");
        }
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    int fd_ = -1;
};

// What send_until_answered() saw.
struct streamed {
    std::size_t sent = 0;      // bytes sent before the server's first reply byte or close
    std::size_t peak_heap = 0; // the most heap in use (this process) while sending
    received reply;
};

// Sends `piece` over and over (at most `cap` bytes) while watching for the server's answer; stops
// sending when the server answers or closes, then reads until it closes.
streamed send_until_answered(client_socket& client, const std::string& piece, std::size_t cap,
                             milliseconds timeout)
{
    streamed result;
    auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
        result.peak_heap = std::max(result.peak_heap, heap_in_use());
        short events = POLLIN;
        if (result.sent < cap) {
            events |= POLLOUT;
        }
        pollfd p{client.fd(), events, 0};
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        if (::poll(&p, 1, static_cast<int>(std::max(left.count(), milliseconds::rep{0}))) <= 0) {
            continue;
        }
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            break;
        }
        auto offset = result.sent % piece.size();
        auto length = std::min(piece.size() - offset, cap - result.sent);
        auto n = ::send(client.fd(), piece.data() + offset, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            result.sent += static_cast<std::size_t>(n);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            break;
        }
    }
    result.reply =
        client.read_until_closed(duration_cast<milliseconds>(deadline - steady_clock::now()));
    return result;
}

// Raises the soft RLIMIT_NOFILE to at least `needed` for the scope (restored at exit), and the
// hard limit too when it is lower and the process may (CAP_SYS_RESOURCE); set() changes
// the soft limit again, lower too. ok() is false when the hard limit stays below `needed`.
class descriptor_limit {
  public:
    explicit descriptor_limit(rlim_t needed)
    {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        if (saved_.rlim_cur != RLIM_INFINITY && saved_.rlim_cur < needed) {
            if (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < needed) {
                rlimit raised{needed, needed};
                if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
                    return;
                }
                hard_raised_ = needed;
            }
            set(needed);
        }
        ok_ = true;
    }
    descriptor_limit(const descriptor_limit&) = delete;
    descriptor_limit& operator=(const descriptor_limit&) = delete;
    ~descriptor_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

    bool ok() const { return ok_; }
    rlim_t hard() const { return saved_.rlim_max; }

    void set(rlim_t soft)
    {
        rlimit changed = saved_;
        changed.rlim_cur = soft;
        if (hard_raised_ != 0) {
            changed.rlim_max = hard_raised_;
        }
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &changed) == 0);
    }
    void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

  private:
    rlimit saved_{};
    rlim_t hard_raised_ = 0;
    bool ok_ = false;
};

// A test whose precondition this machine cannot meet. Catch2 v2 has no SKIP, and a case that
// returns early is reported as passed: with CI=true in the environment that is a failure, so a
// green CI never hides an untested case; elsewhere a warning.
void cannot_run_here(const std::string& why)
{
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string_view{ci} == "true") {
        FAIL("cannot run here (CI=true makes that a failure): " << why);
    }
    WARN("skipped: " << why);
}

// Takes every free descriptor of this process (until EMFILE) for the scope.
class descriptor_hogs {
  public:
    descriptor_hogs()
    {
        for (;;) {
            int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                break;
            }
            fds_.push_back(fd);
        }
    }
    descriptor_hogs(const descriptor_hogs&) = delete;
    descriptor_hogs& operator=(const descriptor_hogs&) = delete;
    ~descriptor_hogs()
    {
        for (int fd : fds_) {
            ::close(fd);
        }
    }
    std::size_t count() const { return fds_.size(); }

  private:
    std::vector<int> fds_;
};

// How many descriptors this process has open (client and server sides alike).
std::size_t open_descriptors()
{
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator{"/proc/self/fd"}) {
        ++count;
    }
    return count;
}

// Waits until `condition` holds or `timeout` passes; returns whether it held.
template <typename Condition>
bool wait_for(Condition condition, milliseconds timeout)
{
    auto deadline = steady_clock::now() + timeout;
    while (!condition()) {
        if (steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(milliseconds{10});
    }
    return true;
}

std::string handshake_target(const std::string& serial_number)
{
    return "/iclock/cdata?SN=" + serial_number + "&options=all&pushver=2.4.1&language=69";
}

// A terminal's first contact: handshake then poll, each on its own connection as terminals do.
// Checks both replies and returns how long the pair took.
steady_clock::duration first_contact(unsigned short port, const std::string& serial_number)
{
    auto start = steady_clock::now();
    auto handshake = device_get(port, handshake_target(serial_number));
    auto poll = device_get(port, "/iclock/getrequest?SN=" + serial_number);
    auto took = steady_clock::now() - start;
    INFO(serial_number);
    CHECK(handshake.status == 200);
    CHECK(handshake.body.rfind("GET OPTION FROM: " + serial_number + "\n", 0) == 0);
    CHECK(poll.status == 200);
    CHECK(poll.body.find("SET OPTIONS DateTime=") != std::string::npos);
    return took;
}

// A ping (no database work) on a new connection; checks the reply, returns how long it took.
steady_clock::duration timed_ping(unsigned short port)
{
    auto start = steady_clock::now();
    auto reply = device_get(port, "/iclock/ping?SN=PING1");
    auto took = steady_clock::now() - start;
    CHECK(reply.body == "OK");
    return took;
}

double median_ms(std::vector<steady_clock::duration> samples)
{
    std::sort(samples.begin(), samples.end());
    auto middle = samples.size() / 2;
    auto median =
        samples.size() % 2 == 1 ? samples[middle] : (samples[middle - 1] + samples[middle]) / 2;
    return duration<double, std::milli>(median).count();
}

// `count` ATTLOG lines (pins 1000 to 1499) at one-minute steps from 2026-01-01 08:00.
std::string attlog_lines(int first, int count)
{
    std::string body;
    auto start = protocol::parse_civil_time("2026-01-01 08:00:00");
    for (int i = first; i < first + count; ++i) {
        body += fmt::format("{}\t{}\t0\t1\t0\t0\t0\n", 1000 + i % 500,
                            protocol::format_civil_time(*start + minutes{i}));
    }
    return body;
}

// The punches stored for one device.
std::size_t stored_punches(const running_server& server, const std::string& serial_number)
{
    auto db = server.database();
    server::punch_filter filter{.serial_numbers = {serial_number}, .limit = 100000};
    auto rows = db->punches().query_punches(filter);
    REQUIRE(rows);
    return rows.value->size();
}

} // namespace

TEST_CASE("5,000 idle connections do not keep a device from being served", "[e2e][abuse]")
{
    constexpr std::size_t idle_count = 5000;
    constexpr int rounds = 20;
    // Each idle connection holds two descriptors here: the client's and the server's.
    descriptor_limit limit{2 * idle_count + open_descriptors() + 256};
    if (!limit.ok()) {
        cannot_run_here(fmt::format("{} idle connections need about {} descriptors, and the hard "
                                    "RLIMIT_NOFILE is {} (raising it needs CAP_SYS_RESOURCE)",
                                    idle_count, 2 * idle_count + 256, limit.hard()));
        return;
    }
    temp_dir dir;
    running_server server{utc_settings(), dir.path};

    // A few contacts first, so that neither series pays for the first allocations.
    for (int i = 0; i < 5; ++i) {
        first_contact(server.port, fmt::format("WARM{:03}", i));
    }
    std::vector<steady_clock::duration> quiet;
    std::vector<steady_clock::duration> quiet_pings;
    for (int i = 0; i < rounds; ++i) {
        quiet.push_back(first_contact(server.port, fmt::format("QUIET{:03}", i)));
        quiet_pings.push_back(timed_ping(server.port));
    }

    auto before = open_descriptors();
    std::vector<client_socket> idle;
    idle.reserve(idle_count);
    for (std::size_t i = 0; i < idle_count; ++i) {
        idle.emplace_back(server.port);
    }
    // Every idle connection is accepted and held by a session (its descriptor is open here; the
    // slack is for sessions of the rounds above still closing).
    REQUIRE(wait_for([&] { return open_descriptors() + 10 >= before + 2 * idle_count; }, 20s));

    std::vector<steady_clock::duration> crowded;
    std::vector<steady_clock::duration> crowded_pings;
    for (int i = 0; i < rounds; ++i) {
        auto took = first_contact(server.port, fmt::format("CROWD{:03}", i));
        // Not starved: served long before the 30 s read deadline frees any idle descriptor. (The
        // poll's reply carries a time sync, which waits for the next whole second: < 1 s.)
        CHECK(took < 3s);
        crowded.push_back(took);
        crowded_pings.push_back(timed_ping(server.port));
        CHECK(crowded_pings.back() < 2s);
    }

    // The idle connections were all still open during the measurement: none readable or hung up.
    std::vector<pollfd> watched;
    for (const auto& c : idle) {
        watched.push_back({c.fd(), POLLIN, 0});
    }
    CHECK(::poll(watched.data(), watched.size(), 0) == 0);

    // Figures for the record, not assertions: a first contact is dominated by its time sync's
    // wait for the next whole second, then its commits; a ping touches no database.
    fmt::print("idle connections: median of {} first contacts (handshake + getrequest) {:.2f} ms "
               "without, {:.2f} ms with {} idle connections open; median ping {:.2f} ms "
               "without, {:.2f} ms with\n",
               rounds, median_ms(quiet), median_ms(crowded), idle_count, median_ms(quiet_pings),
               median_ms(crowded_pings));
}

TEST_CASE("A slowloris client is cut off by the read deadline while others are served",
          "[e2e][abuse]")
{
    temp_dir dir;
    auto config = utc_settings();
    config.read_timeout = 2s;
    running_server server{config, dir.path};

    std::string head = "POST /iclock/cdata?SN=SLOW1&table=ATTLOG HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 100\r\n\r\n";
    std::string drip;
    client_socket slow{server.port};
    auto connected = steady_clock::now();
    SECTION("one byte of the request line and headers a second")
    {
        drip = head;
    }
    SECTION("the headers at once, then one byte of the body a second")
    {
        REQUIRE(slow.send_all(head));
        drip = std::string(100, 'x');
    }

    // One byte a second: each arrives well inside the deadline, but the deadline covers the
    // whole request.
    received seen;
    int others_served = 0;
    std::size_t next = 0;
    auto give_up = connected + config.read_timeout + 3s;
    while (!seen.closed && steady_clock::now() < give_up) {
        auto tick = std::min(steady_clock::now() + 1s, give_up);
        while (!seen.closed && steady_clock::now() < tick) {
            slow.wait_readable(tick, seen);
        }
        if (seen.closed) {
            break;
        }
        REQUIRE(next < drip.size());
        slow.send_all(drip.substr(next++, 1));
        // Others are served meanwhile.
        auto other = device_get(server.port, "/iclock/ping?SN=OTHER1");
        CHECK(other.body == "OK");
        others_served += other.body == "OK" ? 1 : 0;
    }
    auto lived = steady_clock::now() - connected;

    INFO("bytes dripped: " << next << ", connection lived "
                           << duration_cast<milliseconds>(lived).count() << " ms");
    REQUIRE(seen.closed);
    CHECK(seen.bytes.empty()); // a timeout gets no answer, only the close
    CHECK(lived >= config.read_timeout - 200ms);
    CHECK(lived < config.read_timeout + 3s);
    CHECK(others_served >= 1);
    CHECK(device_get(server.port, "/iclock/ping?SN=OTHER1").body == "OK");
    CHECK(stored_punches(server, "SLOW1") == 0);
}

TEST_CASE("Request headers over 16 KiB get 431 with a one-line reason and the connection closes",
          "[e2e][abuse]")
{
    temp_dir dir;
    running_server server{utc_settings(), dir.path};
    client_socket client{server.port};
    received answer;

    SECTION("one 20 KiB header")
    {
        REQUIRE(client.send_all("GET /iclock/ping?SN=BIGH1 HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                std::string(20 * 1024, 'a') + "\r\n\r\n"));
        answer = client.read_until_closed(10s);
    }
    SECTION("400 small headers adding up to over 16 KiB")
    {
        std::string request = "GET /iclock/ping?SN=BIGH1 HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 400; ++i) {
            request += fmt::format("X-Field-{}: {}\r\n", i, std::string(48, 'b'));
        }
        REQUIRE(client.send_all(request + "\r\n"));
        answer = client.read_until_closed(10s);
    }
    SECTION("an endless header is cut at the limit, not read to its end")
    {
        REQUIRE(client.send_all("GET /iclock/ping?SN=BIGH1 HTTP/1.1\r\nHost: x\r\n"));
        auto streamed = send_until_answered(client, "X-Fill: " + std::string(1000, 'c') + "\r\n",
                                            std::size_t{1} << 30, 10s);
        INFO("header bytes sent before the answer: " << streamed.sent);
        CHECK(streamed.sent < 32u * 1024 * 1024);
        answer = streamed.reply;
    }

    REQUIRE(answer.closed);
    auto replies = parse_replies(answer.bytes);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].raw == answer.bytes); // one reply, nothing after it
    CHECK(replies[0].status_line == "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK(replies[0].body == "request header fields too large\n");
    CHECK(replies[0].headers["connection"] == "close");
    CHECK(replies[0].headers["content-type"] == "text/plain");
    // A 12 KiB header is within the limit, and the server goes on.
    auto within = adms::test::round_trip(
        server.port, "GET /iclock/ping?SN=BIGH1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Big: " +
                         std::string(12 * 1024, 'a') + "\r\n\r\n");
    CHECK(within.status == 200);
    CHECK(within.body == "OK");
}

TEST_CASE("Bodies over the limit get 413 after the headers, without the body being read",
          "[e2e][abuse]")
{
    temp_dir dir;
    auto config = utc_settings();
    config.max_body_bytes = 64 * 1024;
    running_server server{config, dir.path};
    const std::string target = "/iclock/cdata?SN=BIGB1&table=ATTLOG";
    constexpr std::size_t one_gib = std::size_t{1} << 30;
    client_socket client{server.port};
    received answer;

    malloc_trim(0);
    auto baseline = heap_in_use();
    std::size_t peak = baseline;

    SECTION("Content-Length: 1 GiB and no body byte sent yet")
    {
        // The answer cannot depend on the body: none of it is ever sent.
        REQUIRE(client.send_all(fmt::format("POST {} HTTP/1.1\r\nHost: x\r\n"
                                            "Content-Length: {}\r\n\r\n",
                                            target, one_gib)));
        answer = client.read_until_closed(10s);
    }
    SECTION("Content-Length: 1 GiB with the body streaming")
    {
        REQUIRE(client.send_all(fmt::format("POST {} HTTP/1.1\r\nHost: x\r\n"
                                            "Content-Length: {}\r\n\r\n",
                                            target, one_gib)));
        auto streamed = send_until_answered(client, std::string(64 * 1024, 'x'), one_gib, 20s);
        INFO("body bytes sent before the answer: " << streamed.sent);
        // The kernel's socket buffers take a few MiB before the answer can be seen; a server
        // reading the body through would have taken all of the 1 GiB.
        CHECK(streamed.sent < 32u * 1024 * 1024);
        peak = std::max(peak, streamed.peak_heap);
        answer = streamed.reply;
    }
    SECTION("a chunked body passing the limit, answered as soon as it passes")
    {
        // Five 16 KiB chunks (80 KiB against 64 KiB), no last chunk: a server with a larger
        // limit would wait for more and never answer.
        std::string request = fmt::format("POST {} HTTP/1.1\r\nHost: x\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n",
                                          target);
        for (int i = 0; i < 5; ++i) {
            request += fmt::format("{:x}\r\n{}\r\n", 16 * 1024, std::string(16 * 1024, 'y'));
        }
        REQUIRE(client.send_all(request));
        answer = client.read_until_closed(10s);
    }
    SECTION("one chunk announcing 1 GiB")
    {
        REQUIRE(client.send_all(fmt::format("POST {} HTTP/1.1\r\nHost: x\r\n"
                                            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                                            target, one_gib)));
        auto streamed = send_until_answered(client, std::string(64 * 1024, 'z'), one_gib, 20s);
        INFO("chunk bytes sent before the answer: " << streamed.sent);
        CHECK(streamed.sent < 32u * 1024 * 1024);
        peak = std::max(peak, streamed.peak_heap);
        answer = streamed.reply;
    }

    REQUIRE(answer.closed);
    auto replies = parse_replies(answer.bytes);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].raw == answer.bytes);
    CHECK(replies[0].status_line == "HTTP/1.1 413 Payload Too Large");
    CHECK(replies[0].body == "request body too large\n");
    CHECK(replies[0].headers["connection"] == "close");
    // The heap of this process (server and client) never grew by anything like the body.
    auto growth = peak - baseline;
    INFO("heap growth while sending: " << growth << " bytes");
#if ADMS_ASAN
    WARN("heap growth not measured: AddressSanitizer's allocator is invisible to mallinfo2()");
#else
    CHECK(growth < 16u * 1024 * 1024);
#endif
    CHECK(stored_punches(server, "BIGB1") == 0);
    CHECK(device_get(server.port, "/iclock/ping?SN=BIGB1").body == "OK");
}

TEST_CASE("1,000 parallel handshakes from distinct SNs all succeed", "[e2e][abuse]")
{
    constexpr std::size_t count = 1000;
    descriptor_limit limit{2 * count + open_descriptors() + 256};
    if (!limit.ok()) {
        cannot_run_here(fmt::format("{} parallel connections need about {} descriptors, and the "
                                    "hard RLIMIT_NOFILE is {} (raising it needs CAP_SYS_RESOURCE)",
                                    count, 2 * count + 256, limit.hard()));
        return;
    }
    temp_dir dir;
    running_server server{utc_settings(), dir.path};

    // Connect all, then send all, then read all: the server has every handshake in flight at
    // once.
    std::vector<std::string> serial_numbers;
    std::vector<client_socket> clients;
    clients.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        serial_numbers.push_back(fmt::format("PAR{:05}", i));
        clients.emplace_back(server.port);
    }
    auto start = steady_clock::now();
    for (std::size_t i = 0; i < count; ++i) {
        REQUIRE(clients[i].send_all(device_request("GET", handshake_target(serial_numbers[i]))));
    }
    std::vector<received> answers(count);
    std::size_t open = count;
    auto deadline = start + 60s;
    while (open > 0 && steady_clock::now() < deadline) {
        std::vector<pollfd> watched;
        std::vector<std::size_t> index;
        for (std::size_t i = 0; i < count; ++i) {
            if (!answers[i].closed) {
                watched.push_back({clients[i].fd(), POLLIN, 0});
                index.push_back(i);
            }
        }
        if (::poll(watched.data(), watched.size(), 1000) <= 0) {
            continue;
        }
        for (std::size_t k = 0; k < watched.size(); ++k) {
            if (watched[k].revents != 0) {
                clients[index[k]].wait_readable(deadline, answers[index[k]]);
                open -= answers[index[k]].closed ? 1 : 0;
            }
        }
    }
    auto took = steady_clock::now() - start;
    fmt::print("parallel handshakes: {} answered in {} ms\n", count - open,
               duration_cast<milliseconds>(took).count());

    std::size_t good = 0;
    for (std::size_t i = 0; i < count; ++i) {
        auto replies = parse_replies(answers[i].bytes);
        bool ok = answers[i].closed && replies.size() == 1 && replies[0].status == 200 &&
                  replies[0].body.rfind("GET OPTION FROM: " + serial_numbers[i] + "\n", 0) == 0;
        if (!ok) {
            UNSCOPED_INFO(serial_numbers[i] << " got: " << answers[i].bytes.substr(0, 200));
        }
        good += ok ? 1 : 0;
    }
    CHECK(good == count);

    // Device rows are written within a second of a change.
    std::set<std::string> stored;
    auto db = server.database();
    adms::test::eventually([&] {
        auto devices = db->devices().load_devices();
        stored.clear();
        for (const auto& d : *devices.value) {
            stored.insert(d.serial_number);
        }
        return stored.size() >= serial_numbers.size();
    });
    CHECK(stored == std::set<std::string>(serial_numbers.begin(), serial_numbers.end()));
}

TEST_CASE("Pipelined requests mixing uploads and polls are answered in order", "[e2e][abuse]")
{
    temp_dir dir;
    running_server server{utc_settings(), dir.path};

    auto upload = attlog_lines(0, 3);
    std::string burst =
        "GET " + handshake_target("PIPE1") + " HTTP/1.1\r\nHost: x\r\n\r\n" +
        fmt::format("POST /iclock/cdata?SN=PIPE1&table=ATTLOG&Stamp=9999 HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: {}\r\n\r\n{}",
                    upload.size(), upload) +
        "GET /iclock/getrequest?SN=PIPE1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /iclock/ping?SN=PIPE1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    client_socket client{server.port};
    SECTION("in one write")
    {
        REQUIRE(client.send_all(burst));
    }
    SECTION("in 7-byte writes that split lines, headers and the body")
    {
        for (std::size_t at = 0; at < burst.size(); at += 7) {
            REQUIRE(client.send_all(std::string_view{burst}.substr(at, 7)));
        }
    }
    auto answer = client.read_until_closed(10s);
    REQUIRE(answer.closed);
    auto replies = parse_replies(answer.bytes);
    REQUIRE(replies.size() == 4);
    CHECK(replies[0].body.rfind("GET OPTION FROM: PIPE1\n", 0) == 0);
    CHECK(replies[1].body == "OK:3");
    CHECK(replies[2].body.rfind("C:", 0) == 0);
    CHECK(replies[2].body.find("SET OPTIONS DateTime=") != std::string::npos);
    CHECK(replies[3].body == "OK");
    CHECK(replies[3].headers["connection"] == "close");
    for (int i = 0; i < 3; ++i) {
        CHECK(replies[i].headers.count("connection") == 0); // kept alive
    }
    CHECK(stored_punches(server, "PIPE1") == 3);
}

TEST_CASE("A half-closed connection gets its complete answer, and one half-closed mid-request is "
          "dropped",
          "[e2e][abuse]")
{
    temp_dir dir;
    running_server server{utc_settings(), dir.path};
    // read_timeout is the default 30 s: every close below comes from the client's FIN.
    REQUIRE(server.config.read_timeout >= 10s);

    SECTION("a complete GET, then shutdown(SHUT_WR)")
    {
        client_socket client{server.port};
        REQUIRE(client.send_all("GET /iclock/getrequest?SN=HALF1 HTTP/1.1\r\nHost: x\r\n\r\n"));
        client.shutdown_write();
        auto answer = client.read_until_closed(5s);
        REQUIRE(answer.closed);
        auto replies = parse_replies(answer.bytes);
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].raw == answer.bytes);
        CHECK(replies[0].status == 200);
        CHECK(replies[0].body.find("SET OPTIONS DateTime=") != std::string::npos);
    }
    SECTION("a complete upload, then shutdown(SHUT_WR)")
    {
        auto upload = attlog_lines(0, 2);
        client_socket client{server.port};
        REQUIRE(client.send_all(fmt::format("POST /iclock/cdata?SN=HALF1&table=ATTLOG HTTP/1.1\r\n"
                                            "Host: x\r\nContent-Length: {}\r\n\r\n{}",
                                            upload.size(), upload)));
        client.shutdown_write();
        auto answer = client.read_until_closed(5s);
        REQUIRE(answer.closed);
        auto replies = parse_replies(answer.bytes);
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].raw == answer.bytes);
        CHECK(replies[0].body == "OK:2");
        CHECK(stored_punches(server, "HALF1") == 2);
    }
    SECTION("shutdown(SHUT_WR) inside the headers or the body")
    {
        for (std::string partial :
             {std::string{"GET /iclock/getrequest?SN=HALF2 HTTP/1.1\r\nHost: x\r\n"},
              "POST /iclock/cdata?SN=HALF2&table=ATTLOG HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 500\r\n\r\n" +
                  attlog_lines(0, 2)}) {
            client_socket client{server.port};
            REQUIRE(client.send_all(partial));
            client.shutdown_write();
            auto answer = client.read_until_closed(5s);
            INFO(partial);
            // Closed on the FIN, long before the deadline, without handling half a request.
            CHECK(answer.closed);
            CHECK(answer.bytes.find(" 200 ") == std::string::npos);
        }
        CHECK(stored_punches(server, "HALF2") == 0);
    }
    CHECK(device_get(server.port, "/iclock/ping?SN=HALF3").body == "OK");
}

TEST_CASE("Clients that reset their connection, even in the middle of a large reply, do not "
          "disturb the server",
          "[e2e][abuse]")
{
    temp_dir dir;
    auto config = utc_settings();
    config.log_format = "json";
    running_server server{config, dir.path};

    // Connect and reset at once, and send a request and reset before its answer.
    for (int i = 0; i < 50; ++i) {
        client_socket{server.port}.reset();
        client_socket client{server.port};
        REQUIRE(
            client.send_all(device_request("GET", handshake_target(fmt::format("RST{:02}", i)))));
        client.reset();
    }

    // A CSV export of 60,000 punches (over 6 MiB: more than the 4 MiB a socket may buffer), read a
    // little through a small receive window, then reset.
    REQUIRE(device_get(server.port, handshake_target("EXPORT1")).status == 200);
    constexpr int total = 60000;
    for (int first = 0; first < total; first += 10000) {
        REQUIRE(adms::test::device_post(server.port, "/iclock/cdata?SN=EXPORT1&table=ATTLOG",
                                        attlog_lines(first, 10000))
                    .body == "OK:10000");
    }
    auto export_request = fmt::format("GET /punches.csv HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                      "Bearer {}\r\nConnection: close\r\n\r\n",
                                      adms::test::test_token);
    {
        client_socket client{server.port, 4096};
        REQUIRE(client.send_all(export_request));
        received start;
        auto deadline = steady_clock::now() + 10s;
        while (start.bytes.size() < 16 * 1024 && !start.closed && steady_clock::now() < deadline) {
            client.wait_readable(deadline, start);
        }
        REQUIRE(start.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        REQUIRE_FALSE(start.closed);
        client.reset();
    }

    // The whole export still streams to the next client, and devices are served.
    auto full = adms::test::round_trip_raw(server.port, export_request, 30s);
    auto replies = parse_replies(full);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].status == 200);
    CHECK(std::count(replies[0].body.begin(), replies[0].body.end(), '\n') == total + 1);
    CHECK(device_get(server.port, "/iclock/ping?SN=EXPORT1").body == "OK");

    // Both exports are logged; the reset one stopped part-way through the body.
    std::regex logged{R"re("target":"/punches.csv","http":"1.1","status":200,"bytes":(\d+))re"};
    std::vector<std::size_t> sizes;
    REQUIRE(wait_for(
        [&] {
            sizes.clear();
            auto log = server.log_text();
            for (std::sregex_iterator it{log.begin(), log.end(), logged}, end; it != end; ++it) {
                sizes.push_back(std::stoul((*it)[1].str()));
            }
            return sizes.size() == 2;
        },
        10s));
    std::sort(sizes.begin(), sizes.end());
    CHECK(sizes[1] == replies[0].body.size());
    CHECK(sizes[0] < sizes[1]);
    CHECK(server.log_text().find("connection closed after an error") == std::string::npos);
}

TEST_CASE("When descriptors run out the acceptor waits, then serves again once they are free",
          "[e2e][abuse]")
{
#if ADMS_ASAN
    // The sanitizers' runtime needs descriptors of its own (a pipe to check memory before a
    // vptr check, a socket pair for the symbolizer) and reports errors when none are left.
    WARN("skipped under the sanitizers: their runtime needs the descriptors this test takes");
    return;
#endif
    temp_dir dir;
    running_server server{utc_settings(), dir.path};
    REQUIRE(device_get(server.port, "/iclock/ping?SN=FD1").body == "OK");

    // Opened while descriptors are free: the client's socket and a reader of the server's log.
    client_socket client{client_socket::unconnected};
    std::ifstream log{server.log_path};
    descriptor_limit limit{0};
    limit.set(open_descriptors() + 64);
    {
        // Every free descriptor taken: the kernel completes the connection, the server cannot
        // accept it.
        descriptor_hogs hogs;
        REQUIRE(hogs.count() > 0);
        client.connect_to(server.port);
        std::string text;
        bool refused = wait_for(
            [&] {
                log.clear();
                text.append(std::istreambuf_iterator<char>{log}, {});
                return text.find("accept failed: Too many open files") != std::string::npos;
            },
            5s);
        CHECK(refused);
    }
    limit.restore();

    REQUIRE(client.send_all(device_request("GET", "/iclock/ping?SN=FD2")));
    auto answer = client.read_until_closed(10s);
    auto replies = parse_replies(answer.bytes);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].body == "OK");
    CHECK(device_get(server.port, "/iclock/ping?SN=FD3").body == "OK");
}
