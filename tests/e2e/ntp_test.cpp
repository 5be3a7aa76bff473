// The SNTP server end to end: the real application with ntp_listen on 127.0.0.1:0 (and [::1]:0),
// real UDP datagrams, the real kernel clock state.
#include "protocol/ntp_packet.hpp"
#include "server/timekeeping/host_clock.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <vector>

using namespace std::chrono;
using namespace adms::protocol;
using adms::server::host_clock_status;
using adms::server::read_host_clock;
using adms::test::eventually;
using adms::test::running_server;
using adms::test::temp_dir;
using adms::test::test_token;

namespace {

// A UDP socket talking to one server port on the loopback interface.
class udp_client {
  public:
    udp_client(unsigned short port, bool ipv6 = false)
        : fd_{::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0)}
    {
        REQUIRE(fd_ >= 0);
        if (ipv6) {
            auto& a = reinterpret_cast<sockaddr_in6&>(server_);
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            a.sin6_addr = in6addr_loopback;
            length_ = sizeof(sockaddr_in6);
        } else {
            auto& a = reinterpret_cast<sockaddr_in&>(server_);
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            length_ = sizeof(sockaddr_in);
        }
    }
    ~udp_client() { ::close(fd_); }
    udp_client(const udp_client&) = delete;
    udp_client& operator=(const udp_client&) = delete;

    void send(const std::vector<std::uint8_t>& bytes)
    {
        auto sent = ::sendto(fd_, bytes.data(), bytes.size(), 0,
                             reinterpret_cast<const sockaddr*>(&server_), length_);
        REQUIRE(sent == static_cast<ssize_t>(bytes.size()));
    }

    // The next datagram, or nullopt when none arrives within `timeout`.
    std::optional<std::vector<std::uint8_t>> receive(milliseconds timeout)
    {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
            return std::nullopt;
        }
        std::vector<std::uint8_t> buffer(2048);
        auto n = ::recv(fd_, buffer.data(), buffer.size(), 0);
        REQUIRE(n >= 0);
        buffer.resize(static_cast<std::size_t>(n));
        return buffer;
    }

  private:
    int fd_;
    sockaddr_storage server_{};
    socklen_t length_ = 0;
};

// A request as an SNTP client sends it, with `transmit` in its transmit field; `size` pads it
// (a MAC or extension fields) or cuts it.
std::vector<std::uint8_t> request(unsigned version, unsigned mode, ntp_timestamp transmit,
                                  std::size_t size = 48)
{
    ntp_header h;
    h.version = static_cast<std::uint8_t>(version);
    h.mode = static_cast<std::uint8_t>(mode);
    h.poll = 10;
    h.transmit = transmit;
    auto bytes = write_ntp_header(h);
    std::vector<std::uint8_t> out(bytes.begin(), bytes.end());
    out.resize(size, 0x5A);
    return out;
}

// One exchange with the times the test saw around it.
struct exchange {
    ntp_header request;
    ntp_header reply;
    ntp_time sent;     // the test's clock just before sending
    ntp_time answered; // the test's clock just after receiving
};

exchange ask(udp_client& client, unsigned version)
{
    exchange e;
    e.sent = system_clock::now();
    auto transmit = to_ntp_timestamp(e.sent);
    transmit.fraction ^= 0x0000'0F0Fu; // a value the server cannot produce by itself
    auto bytes = request(version, 3, transmit);
    e.request = *read_ntp_header(bytes);
    client.send(bytes);
    auto reply = client.receive(seconds{5});
    e.answered = system_clock::now();
    REQUIRE(reply);
    REQUIRE(reply->size() == 48);
    e.reply = *read_ntp_header(*reply);
    return e;
}

// The timestamps of a reply are the server's clock between the test's send and receive.
void check_times(const exchange& e)
{
    auto receive = from_ntp_timestamp(e.reply.receive, e.sent);
    auto transmit = from_ntp_timestamp(e.reply.transmit, e.sent);
    CHECK(e.reply.originate == e.request.transmit);
    CHECK(e.sent <= receive);
    CHECK(receive <= transmit);
    CHECK(transmit <= e.answered);
}

// What the kernel says now decides leap, stratum and reference ID.
void check_claim(const ntp_header& reply, const host_clock_status& kernel, unsigned stratum,
                 unsigned local_stratum)
{
    INFO("kernel state " << kernel.state << ", status " << kernel.status);
    if (kernel.synchronised) {
        auto leap = kernel.insert_leap   ? ntp_leap::insert_second
                    : kernel.delete_leap ? ntp_leap::delete_second
                                         : ntp_leap::none;
        CHECK(reply.leap == leap);
        CHECK(reply.stratum == stratum);
        CHECK(reply.reference_id == std::array<std::uint8_t, 4>{127, 0, 0, 1});
        CHECK(reply.reference != ntp_timestamp{});
    } else if (local_stratum != 0) {
        CHECK(reply.leap == ntp_leap::none);
        CHECK(reply.stratum == local_stratum);
        CHECK(reply.reference_id == std::array<std::uint8_t, 4>{'L', 'O', 'C', 'L'});
    } else {
        CHECK(reply.leap == ntp_leap::alarm);
        CHECK(reply.stratum == 16);
    }
}

std::string metrics_text(unsigned short port)
{
    auto reply = adms::test::round_trip(
        port, fmt::format("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                          "{}\r\nConnection: close\r\n\r\n",
                          test_token));
    REQUIRE(reply.status == 200);
    return reply.body;
}

// Settings with the SNTP server on `listen`.
adms::server::settings ntp_settings(const std::string& listen = "127.0.0.1:0")
{
    adms::server::settings config;
    config.time_zone = "UTC";
    config.ntp_listen = listen;
    return config;
}

} // namespace

TEST_CASE("The SNTP server answers v3 and v4 requests with the host clock, honestly", "[ntp]")
{
    temp_dir dir;
    auto config = ntp_settings();
    config.ntp_stratum = 5;
    running_server server{config, dir.path};
    REQUIRE(server.ntp_port != 0);
    auto kernel = read_host_clock();
    REQUIRE(kernel.error.empty());
    CHECK_THAT(server.log_text(),
               Catch::Contains(fmt::format(
                   "NTP (SNTP server) listening on 127.0.0.1:{}, {}", server.ntp_port,
                   kernel.synchronised ? "host clock synchronised"
                                       : "host clock not synchronised (answers leap 3 / "
                                         "stratum 16)")));

    udp_client client{server.ntp_port};
    for (unsigned version : {3u, 4u, 4u, 3u}) {
        INFO("version " << version);
        auto e = ask(client, version);
        CHECK(e.reply.version == version);
        CHECK(e.reply.mode == 4);
        CHECK(e.reply.poll == 10);
        CHECK(e.reply.root_delay == 0);
        CHECK(e.reply.precision <= -10); // a nanosecond clock says -29
        check_times(e);
        check_claim(e.reply, read_host_clock(), 5, 0);
    }
    CHECK(eventually([&] {
        return metrics_text(server.port).find(R"(admsd_ntp_requests_total{result="answered"} 4)") !=
               std::string::npos;
    }));
}

TEST_CASE("With ntp_local_stratum an unsynchronised host clock is served as LOCL", "[ntp]")
{
    temp_dir dir;
    auto config = ntp_settings();
    config.ntp_local_stratum = 10;
    running_server server{config, dir.path};
    auto kernel = read_host_clock();
    udp_client client{server.ntp_port};
    auto e = ask(client, 4);
    check_times(e);
    check_claim(e.reply, read_host_clock(), 4, 10);
    if (!kernel.synchronised) {
        CHECK_THAT(server.log_text(), Catch::Contains("served anyway at local stratum 10"));
        CHECK_THAT(server.log_text(), Catch::Contains("ntp_local_stratum 10 serves it anyway"));
        // The reference time is the clock itself: at most the transmit time.
        CHECK(from_ntp_timestamp(e.reply.reference, e.sent) <=
              from_ntp_timestamp(e.reply.transmit, e.sent));
        CHECK(from_ntp_timestamp(e.reply.reference, e.sent) >= e.sent);
    }
}

TEST_CASE("Malformed, control, private and short datagrams get no reply and are counted", "[ntp]")
{
    temp_dir dir;
    auto config = ntp_settings();
    running_server server{config, dir.path};
    udp_client client{server.ntp_port};
    ntp_timestamp junk{0x1111'1111u, 0x2222'2222u};
    std::vector<std::vector<std::uint8_t>> dropped{
        {},                       // empty
        request(4, 3, junk, 47),  // one byte short
        request(4, 3, junk, 8),   // a fragment
        request(2, 7, junk, 48),  // ntpdc monlist-style private query
        request(4, 7, junk, 200), // private, long: would amplify nothing anyway
        request(2, 6, junk, 12),  // ntpq control query
        request(4, 6, junk, 48),  // control, full header
        request(5, 3, junk),      // version 5
        request(2, 3, junk),      // version 2
        request(1, 3, junk),      // version 1
        request(0, 3, junk),      // version 0
        request(4, 4, junk),      // a server reply sent back at it
        request(4, 1, junk),      // symmetric active
        request(4, 5, junk),      // broadcast
    };
    for (const auto& datagram : dropped) {
        client.send(datagram);
    }
    // Nothing comes back within a bounded wait...
    CHECK_FALSE(client.receive(milliseconds{300}));
    // ...and the answer to a valid request (with a MAC-sized tail) is the first and only one.
    auto transmit = to_ntp_timestamp(system_clock::now());
    client.send(request(4, 3, transmit, 68));
    auto reply = client.receive(seconds{5});
    REQUIRE(reply);
    CHECK(reply->size() == 48);
    CHECK(read_ntp_header(*reply)->originate == transmit);
    CHECK_FALSE(client.receive(milliseconds{100}));

    std::string text;
    CHECK(eventually([&] {
        text = metrics_text(server.port);
        return text.find(R"(admsd_ntp_requests_total{result="answered"} 1)") != std::string::npos;
    }));
    CHECK_THAT(text, Catch::Contains(fmt::format(
                         R"(admsd_ntp_requests_total{{result="dropped"}} {})", dropped.size())));
}

TEST_CASE("The SNTP server listens on IPv6 and reports a port it cannot bind", "[ntp]")
{
    temp_dir dir;
    {
        auto config = ntp_settings("[::1]:0");
        running_server server{config, dir.path};
        CHECK_THAT(server.log_text(),
                   Catch::Contains(
                       fmt::format("NTP (SNTP server) listening on [::1]:{}", server.ntp_port)));
        udp_client client{server.ntp_port, true};
        auto e = ask(client, 4);
        check_times(e);
    }

    // A port another socket holds: one line naming the setting, and no server.
    int holder = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(holder >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    auto taken = fmt::format("127.0.0.1:{}", ntohs(address.sin_port));

    auto config = ntp_settings(taken);
    config.listen = "127.0.0.1:0";
    config.data_dir = (dir.path / "data2").string();
    config.threads = 1;
    config.admin_tokens = {std::string{test_token}};
    auto log = dir.path / "bind.log";
    std::FILE* out = std::fopen(log.c_str(), "w");
    {
        adms::server::app app{config, out};
        auto started = app.start();
        CHECK(started.error ==
              fmt::format("invalid ntp_listen '{}': cannot listen: Address already in use", taken));
        config.ntp_listen = "localhost:123";
        config.data_dir = (dir.path / "data3").string();
        adms::server::app named{config, out};
        CHECK(named.start().error ==
              "invalid ntp_listen 'localhost:123': 'localhost' is not an IP address");
    }
    std::fclose(out);
    ::close(holder);
}
