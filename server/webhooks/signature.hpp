#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Standard Webhooks v1 signatures (HMAC-SHA256, "whsec_" secrets): what a receiver verifies with
// the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers.
namespace adms::server::webhooks {

// A signing secret's raw bytes.
using secret_bytes = std::vector<unsigned char>;

// The spec's bounds on a secret's length, in bytes.
inline constexpr std::size_t min_secret_bytes = 24;
inline constexpr std::size_t max_secret_bytes = 64;

// A new secret as users see it: "whsec_" + base64 of 32 random bytes (OpenSSL's RAND_bytes).
// Throws only when the system's random generator fails, which is not an expected outcome.
std::string generate_secret();

// A secret's bytes, or why the text is not a secret.
struct secret_result {
    std::optional<secret_bytes> bytes;
    std::string error; // e.g. "the secret is not valid base64"; empty when `bytes` is set
};

// Decodes "whsec_<base64>" (the prefix is optional, as in the reference libraries) into 24 to 64
// bytes. Never echoes the secret in the error.
secret_result decode_secret(std::string_view text);

// One signature: "v1," + base64(HMAC-SHA256(secret, "<msg_id>.<timestamp>.<body>")). `body` is
// the exact bytes sent.
std::string sign(std::span<const unsigned char> secret, std::string_view msg_id,
                 std::int64_t timestamp, std::string_view body);

// The `webhook-signature` header value: one signature per secret, space-separated (several while
// a secret is being rotated, the newest first by convention). Empty when `secrets` is.
std::string signature_header(std::span<const secret_bytes> secrets, std::string_view msg_id,
                             std::int64_t timestamp, std::string_view body);

} // namespace adms::server::webhooks
