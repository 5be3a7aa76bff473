#pragma once

#include "server/timekeeping/host_clock.hpp"

#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace adms::server {

class logger;
class metrics;

// admsd's SNTP server (RFC 4330, server mode) on one UDP socket: answers NTPv3/v4 client
// requests with the host clock, saying honestly whether the kernel considers it synchronised,
// and drops everything else without a word. A reply is always 48 bytes, never more than its
// request.
// Thread safety: bind(), start() and close() are called from one controlling thread; the socket
// is served by one coroutine on a strand of the io_context.
class ntp_responder {
  public:
    // Logs to `log`, counts answered and dropped datagrams in `stats`; both outlive it.
    ntp_responder(boost::asio::io_context& io, logger& log, metrics& stats, ntp_strata strata);
    ~ntp_responder();
    ntp_responder(const ntp_responder&) = delete;
    ntp_responder& operator=(const ntp_responder&) = delete;

    // Binds "host:port" (IPv6 as "[::1]:123"; port 0 picks a free port). Empty on success, else
    // one line naming the setting: "invalid ntp_listen '…': cannot listen: Permission denied".
    std::string bind(const std::string& listen);

    // The bound port (0 before bind()).
    unsigned short port() const;

    // Logs the start line (and a warning when it serves an unsynchronised clock at the local
    // stratum) and starts answering on the io_context.
    void start();

    // Stops answering: the socket closes on its strand.
    void close();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace adms::server
