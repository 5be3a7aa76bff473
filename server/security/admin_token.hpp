#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

// The admin API's bearer tokens: parsing the Authorization header, comparing without leaking
// timing, generating, and the `<data_dir>/admin_token` file made at first start.
namespace adms::server {

// The token of an Authorization header value "Bearer <token>" (scheme case-insensitive, one or
// more spaces, surrounding whitespace ignored); nullopt for other schemes, an empty token or one
// with characters outside RFC 7235's token68 (spaces, controls, ...).
std::optional<std::string_view> bearer_token(std::string_view authorization);

// Whether `presented` equals one of `tokens`. Constant time in the tokens' content: every token
// is compared in full, with no early exit and no branch on the bytes (time depends on the
// lengths only). Empty tokens never match.
bool token_matches(std::string_view presented, std::span<const std::string> tokens);

// A new token: 32 bytes from getrandom(2) as 43 base64url characters, no padding. Throws
// std::system_error when the OS has no randomness to give (an unexpected failure).
std::string generate_token();

// What load_or_create_token found or made; `error` says what is wrong and how to fix it.
struct token_file {
    std::string token;
    bool created = false; // a new token was generated and written
    std::filesystem::path path;
    std::string error; // empty on success
    explicit operator bool() const { return error.empty(); }
};

// The token in `<data_dir>/admin_token` (one trailing newline trimmed), or a new one written
// there with mode 0600 from the start when the file does not exist. Refused with an error: a
// file that is empty, unreadable, not a regular file, too large, holds characters a Bearer
// header cannot carry, or grants any permission to group or others.
token_file load_or_create_token(const std::filesystem::path& data_dir);

} // namespace adms::server
