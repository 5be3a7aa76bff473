#include "server/webhooks/signature.hpp"

#include <fmt/format.h>

#include <array>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdexcept>

namespace adms::server::webhooks {
namespace {

constexpr std::string_view secret_prefix = "whsec_";

// Standard base64 with padding, by OpenSSL.
std::string base64_encode(std::span<const unsigned char> bytes)
{
    // EVP_EncodeBlock writes 4 characters per started 3 bytes and a terminating NUL.
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    auto written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                   static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// Standard padded base64 to bytes; nullopt for anything else. EVP_DecodeBlock alone is too
// lenient for this (it skips surrounding whitespace) and counts the padding as zero bytes, so the
// text is checked first and the padding taken off after.
std::optional<secret_bytes> base64_decode(std::string_view text)
{
    if (text.empty() || text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
    auto data = text.substr(0, text.size() - padding);
    for (char c : data) {
        if (!is_base64_char(c)) {
            return std::nullopt;
        }
    }
    secret_bytes out(text.size() / 4 * 3);
    auto decoded = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                   static_cast<int>(text.size()));
    if (decoded < 0 || static_cast<std::size_t>(decoded) != out.size()) {
        return std::nullopt;
    }
    out.resize(out.size() - padding);
    return out;
}

} // namespace

std::string generate_secret()
{
    std::array<unsigned char, 32> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error{"RAND_bytes failed: the system random generator is unavailable"};
    }
    return std::string{secret_prefix} + base64_encode(bytes);
}

secret_result decode_secret(std::string_view text)
{
    if (text.starts_with(secret_prefix)) {
        text.remove_prefix(secret_prefix.size());
    }
    auto bytes = base64_decode(text);
    if (!bytes) {
        return {std::nullopt,
                "the secret is not standard padded base64 (after the optional whsec_ prefix)"};
    }
    if (bytes->size() < min_secret_bytes || bytes->size() > max_secret_bytes) {
        return {std::nullopt, fmt::format("the secret is {} bytes long; Standard Webhooks secrets "
                                          "are {} to {} bytes",
                                          bytes->size(), min_secret_bytes, max_secret_bytes)};
    }
    return {std::move(bytes), {}};
}

std::string sign(std::span<const unsigned char> secret, std::string_view msg_id,
                 std::int64_t timestamp, std::string_view body)
{
    auto content = fmt::format("{}.{}.{}", msg_id, timestamp, body);
    std::array<unsigned char, 32> mac{};
    std::size_t mac_size = 0;
    auto* done = EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(),
                           secret.size(), reinterpret_cast<const unsigned char*>(content.data()),
                           content.size(), mac.data(), mac.size(), &mac_size);
    // Fails only without a working SHA-256 provider or memory: not an expected outcome.
    if (done == nullptr || mac_size != mac.size()) {
        throw std::runtime_error{"HMAC-SHA256 failed in OpenSSL"};
    }
    return "v1," + base64_encode(mac);
}

std::string signature_header(std::span<const secret_bytes> secrets, std::string_view msg_id,
                             std::int64_t timestamp, std::string_view body)
{
    std::string header;
    for (const auto& secret : secrets) {
        if (!header.empty()) {
            header += ' ';
        }
        header += sign(secret, msg_id, timestamp, body);
    }
    return header;
}

} // namespace adms::server::webhooks
