#pragma once

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace adms::server {

// A TLS server context, or one line saying why none could be made.
struct tls_result {
    std::unique_ptr<boost::asio::ssl::context> context;
    std::string error;
};

// The server context of the TLS listeners: TLS 1.2 and 1.3 only, OpenSSL's default ciphers, the
// certificate chain and key from PEM files.
tls_result make_tls_context(const std::string& cert_file, const std::string& key_file);

} // namespace adms::server
