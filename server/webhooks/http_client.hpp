#pragma once

#include "server/security/access_control.hpp"
#include "server/webhooks/webhook_url.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The transport of outgoing webhooks: one HTTP POST of one event to one endpoint, over Beast, with
// the SSRF rules applied to the addresses actually dialled, TLS verified, deadlines on every step,
// no redirects followed and a bounded read of the reply.
namespace adms::server::webhooks {

// How one delivery attempt ended: what the retry schedule, the attempt log and the metrics need.
enum class delivery_outcome {
    success,         // a 2xx status
    http_status,     // any other status, 3xx included (redirects are never followed)
    timeout,         // the whole-request deadline passed before a response header arrived
    connect_error,   // no connection (DNS failure, refused, unreachable, connect timeout), or the
                     // connection failed or closed before a valid HTTP response header
    tls_error,       // TLS failed: untrusted certificate, wrong host name, handshake, bad ca_file
    blocked,         // every address of the host is refused by the SSRF rules
    invalid_request, // the request cannot be sent as given (a header with CR/LF, a reserved name)
};

// The outcome as a metrics label: "success", "http_status", "timeout", ...
std::string_view to_string(delivery_outcome outcome);

// A header sent with every request to an endpoint (e.g. "Authorization: token key:secret").
struct header_field {
    std::string name;
    std::string value;
};

// One POST of one event to one endpoint. The relay fills it for each attempt.
struct delivery_request {
    webhook_target target;                   // from check_webhook_url()
    std::string webhook_id;                  // the event id: the same on every retry
    std::int64_t timestamp = 0;              // Unix seconds of this attempt (webhook-timestamp)
    std::string signature;                   // signature_header(secrets, id, timestamp, body)
    std::vector<header_field> extra_headers; // checked with check_extra_header()
    std::string body;                        // the exact bytes that were signed
    std::chrono::milliseconds connect_timeout{5000}; // for each address dialled
    std::chrono::milliseconds timeout{15000};        // the whole request, DNS to response header
    network_list allow_list;                         // webhook_allow_networks, parsed
    std::string ca_file;                             // PEM CAs trusted besides the system store
};

// How much of a reply's body the result keeps (for the attempt log), and how much more is read
// and thrown away before the connection is simply closed.
inline constexpr std::size_t max_kept_body = 4096;
inline constexpr std::size_t max_read_body = 64 * 1024;

// What one attempt gave.
struct delivery_result {
    delivery_outcome outcome = delivery_outcome::connect_error;
    int status = 0;                                  // the HTTP status; 0 without a response
    std::optional<std::chrono::seconds> retry_after; // parsed Retry-After, clamped to a day
    std::string body;                                // the reply's first max_kept_body bytes
    std::string error;                               // one printable line; empty on success
    std::string remote;                              // the address dialled, "127.0.0.1:8080"
    std::chrono::milliseconds duration{0};           // from the call to the result
};

// Why a static header cannot be sent, or empty when it can: the name must be an HTTP token, the
// value must hold no control bytes but TAB, and the headers admsd sets itself (host,
// content-type, content-length, user-agent, connection, transfer-encoding, the webhook-* ones
// and a few more that change how the message is framed) cannot be replaced. For the API to use
// at create/PATCH; post() checks again.
std::string check_extra_header(std::string_view name, std::string_view value);

// Sends `request` once and reports how it went; expected failures are results, never
// exceptions. Resolves the host (A and AAAA), drops every address check_address() refuses, dials
// only the rest in order (the address checked is the address dialled), verifies TLS (system
// store plus ca_file, SNI, host name, TLS 1.2 or newer), sends content-type, user-agent
// admsd/<version>, webhook-id, webhook-timestamp, webhook-signature and the extra headers, and
// reads the response header and at most max_read_body bytes of the body. One new connection per
// call ("Connection: close"); proxies in the environment are not used.
// Thread safety: any number of coroutines may call it at once, on any executor (each call runs on
// a strand of its own); the only shared state is the TLS contexts (client_tls_context()). `request`
// must outlive the awaitable (`co_await post(request)` keeps it alive).
boost::asio::awaitable<delivery_result> post(const delivery_request& request);

} // namespace adms::server::webhooks
