#include "server/http/tls.hpp"

#include <boost/asio/ssl.hpp>
#include <fmt/format.h>

namespace adms::server {

tls_result make_tls_context(const std::string& cert_file, const std::string& key_file)
{
    namespace ssl = boost::asio::ssl;
    if (cert_file.empty() || key_file.empty()) {
        return {nullptr, "TLS needs both tls_cert and tls_key (PEM files)"};
    }
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    // TLS 1.2 and 1.3 only; OpenSSL's defaults choose the ciphers.
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    boost::system::error_code ec;
    context->use_certificate_chain_file(cert_file, ec);
    if (ec) {
        return {nullptr, fmt::format("invalid tls_cert '{}': {}", cert_file, ec.message())};
    }
    context->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) {
        return {nullptr, fmt::format("invalid tls_key '{}': {}", key_file, ec.message())};
    }
    return {std::move(context), {}};
}

} // namespace adms::server
