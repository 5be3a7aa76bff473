#include "server/timekeeping/ntp_responder.hpp"

#include "protocol/ntp_packet.hpp"
#include "server/config/setting_values.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace adms::server {
namespace {

namespace net = boost::asio;
using udp = net::ip::udp;

// How often the kernel's state is read besides at each request, so that the moment the host's
// daemon corrects the clock is seen within this long (see host_clock_reference).
constexpr auto watch_interval = std::chrono::seconds{16};

// Large enough for a header with a MAC or a few extension fields; the rest of a longer datagram
// is discarded unread.
constexpr std::size_t receive_buffer_bytes = 512;

protocol::ntp_time now()
{
    return std::chrono::system_clock::now();
}

// The source port of a datagram; 0 when the family is neither IPv4 nor IPv6.
unsigned short source_port(const sockaddr_storage& from)
{
    if (from.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in&>(from).sin_port);
    }
    if (from.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(from).sin6_port);
    }
    return 0;
}

} // namespace

struct ntp_responder::impl {
    impl(net::io_context& context, logger& l, metrics& m, ntp_strata s)
        : strand{net::make_strand(context)}, socket{strand}, timer{strand}, log{l}, stats{m},
          strata{s}, precision{protocol::ntp_precision(host_clock_resolution())}
    {
    }

    net::strand<net::io_context::executor_type> strand;
    udp::socket socket;
    net::steady_timer timer; // watch()'s; close() cancels it
    logger& log;
    metrics& stats;
    ntp_strata strata;
    std::int8_t precision;
    host_clock_reference reference;

    // Waits for the socket to be readable and answers what is queued, until it closes.
    net::awaitable<void> serve();
    // Reads the kernel's state every watch_interval, so the reference time stays current.
    net::awaitable<void> watch();
    // Reads and answers one datagram; false when none is waiting (or on an error, logged).
    bool answer_one();
};

bool ntp_responder::impl::answer_one()
{
    std::array<std::uint8_t, receive_buffer_bytes> buffer{};
    sockaddr_storage from{};
    // Room for SCM_TIMESTAMPNS and anything else the kernel attaches.
    alignas(cmsghdr) std::array<char, 256> control{};
    iovec io_vector{buffer.data(), buffer.size()};
    msghdr message{};
    message.msg_name = &from;
    message.msg_namelen = sizeof(from);
    message.msg_iov = &io_vector;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    auto received = ::recvmsg(socket.native_handle(), &message, MSG_DONTWAIT);
    int error = errno;
    // The kernel's receive timestamp when it gave one, else the earliest moment known here.
    protocol::ntp_time received_at = now();
    if (received < 0) {
        if (error != EAGAIN && error != EWOULDBLOCK && error != EINTR) {
            log.event("error", fmt::format("NTP receive failed: {}", std::strerror(error)));
        }
        return error == EINTR;
    }
    for (auto* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec stamp{};
            std::memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
            received_at = protocol::ntp_time{std::chrono::seconds{stamp.tv_sec} +
                                             std::chrono::nanoseconds{stamp.tv_nsec}};
        }
    }

    auto parsed = protocol::parse_ntp_request(
        std::span<const std::uint8_t>{buffer.data(), static_cast<std::size_t>(received)});
    // Source port 0 cannot be answered; a spoofed one would reflect at a port nobody serves.
    if (!parsed.request || source_port(from) == 0) {
        stats.ntp_request(false);
        return true;
    }

    auto status = read_host_clock();
    reference.observe(status, received_at);
    auto claim = claim_for(status, reference.reference(), strata, received_at);
    protocol::ntp_reply_input input;
    input.leap = claim.leap;
    input.stratum = claim.stratum;
    input.precision = precision;
    input.root_delay = std::chrono::nanoseconds{0};
    input.root_dispersion = claim.root_dispersion;
    input.reference_id = claim.reference_id;
    input.reference = claim.reference;
    input.receive = received_at;
    input.transmit = now(); // as late as possible: only the encoding and sendto follow
    auto reply = protocol::build_ntp_reply(*parsed.request, input);
    auto sent = ::sendto(socket.native_handle(), reply.data(), reply.size(), MSG_DONTWAIT,
                         reinterpret_cast<const sockaddr*>(&from), message.msg_namelen);
    stats.ntp_request(sent == static_cast<ssize_t>(reply.size()));
    return true;
}

net::awaitable<void> ntp_responder::impl::serve()
{
    while (socket.is_open()) {
        auto [ec] =
            co_await socket.async_wait(udp::socket::wait_read, net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !socket.is_open()) {
            co_return;
        }
        if (ec) {
            log.event("error", fmt::format("NTP socket wait failed: {}", ec.message()));
            net::steady_timer pause{strand, std::chrono::milliseconds{100}};
            co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        // Drain what is queued, bounded so the strand's other work (close) gets its turn.
        for (int i = 0; i < 64 && answer_one(); ++i) {
        }
    }
}

net::awaitable<void> ntp_responder::impl::watch()
{
    while (socket.is_open()) {
        reference.observe(read_host_clock(), now());
        timer.expires_after(watch_interval);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
}

ntp_responder::ntp_responder(net::io_context& io, logger& log, metrics& stats, ntp_strata strata)
    : impl_{std::make_unique<impl>(io, log, stats, strata)}
{
}

ntp_responder::~ntp_responder() = default;

std::string ntp_responder::bind(const std::string& listen)
{
    auto& s = *impl_;
    auto parts = split_listen(listen);
    if (!parts) {
        return fmt::format("invalid ntp_listen '{}': expected ADDRESS:PORT, e.g. 0.0.0.0:123",
                           listen);
    }
    const auto& host = parts->host;
    auto port = parts->port;
    boost::system::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (ec) {
        return fmt::format("invalid ntp_listen '{}': '{}' is not an IP address", listen, host);
    }
    udp::endpoint endpoint{address, port};
    s.socket.open(endpoint.protocol(), ec);
    if (!ec) {
        s.socket.bind(endpoint, ec);
    }
    if (ec) {
        boost::system::error_code ignored;
        s.socket.close(ignored);
        return fmt::format("invalid ntp_listen '{}': cannot listen: {}", listen, ec.message());
    }
    // The kernel's receive timestamps (nanoseconds); without them answer_one() reads the clock.
    int on = 1;
    ::setsockopt(s.socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
    return {};
}

unsigned short ntp_responder::port() const
{
    boost::system::error_code ec;
    auto bound = impl_->socket.local_endpoint(ec);
    return ec ? 0 : bound.port();
}

void ntp_responder::start()
{
    auto& s = *impl_;
    boost::system::error_code ec;
    auto bound = s.socket.local_endpoint(ec);
    auto status = read_host_clock();
    s.reference.observe(status, now());
    std::string address = bound.address().to_string();
    if (bound.address().is_v6()) {
        address = "[" + address + "]";
    }
    std::string clock = status.synchronised ? "host clock synchronised"
                        : s.strata.local != 0
                            ? fmt::format("host clock not synchronised (served anyway at local "
                                          "stratum {}, reference LOCL)",
                                          s.strata.local)
                            : "host clock not synchronised (answers leap 3 / stratum 16)";
    s.log.event(
        "start",
        fmt::format("NTP (SNTP server) listening on {}:{}, {}", address, bound.port(), clock),
        {{"address", bound.address().to_string()},
         {"port", std::to_string(bound.port())},
         {"host_clock_synchronised", status.synchronised ? "true" : "false"}});
    if (!status.error.empty()) {
        s.log.event("warning", fmt::format("NTP: cannot read the kernel's clock state ({}); "
                                           "answering as not synchronised",
                                           status.error));
    } else if (!status.synchronised && s.strata.local != 0) {
        s.log.event("warning",
                    fmt::format("NTP: the kernel says the host clock is not synchronised; "
                                "ntp_local_stratum {} serves it anyway as this site's reference",
                                s.strata.local));
    }
    net::co_spawn(s.strand, s.serve(), net::detached);
    net::co_spawn(s.strand, s.watch(), net::detached);
}

void ntp_responder::close()
{
    net::post(impl_->strand, [&s = *impl_] {
        boost::system::error_code ignored;
        s.socket.close(ignored);
        s.timer.cancel();
    });
}

} // namespace adms::server
