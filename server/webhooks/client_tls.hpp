#pragma once

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

// The TLS client contexts of outgoing webhooks.
namespace adms::server::webhooks {

// A client TLS context, or one line saying why none could be made.
struct client_context {
    std::shared_ptr<boost::asio::ssl::context> context;
    std::string error;
};

// The context for connections that trust the system's CAs and those in `ca_file` (PEM; empty for
// none): TLS 1.2 at least (RFC 8996 retired 1.0 and 1.1), peers verified. Making one reads the
// system's whole CA bundle (tens of milliseconds), so each is made once per ca_file and shared,
// and made again when the file's modification time or size changes. The system store is read
// once per ca_file: a CA added to it later is trusted after a restart.
// Thread safety: may be called from any thread; a context may serve many connections at once.
client_context client_tls_context(const std::string& ca_file);

} // namespace adms::server::webhooks
