#pragma once

#include <chrono>
#include <optional>
#include <string_view>

// The `Retry-After` header of a receiver's reply (RFC 9110 section 10.2.3). Pure: "now" is a
// parameter.
namespace adms::server::webhooks {

// The longest wait a receiver can ask for: a day. A bigger value (a typo, a date years ahead)
// must not park an endpoint for longer than the retry schedule would.
inline constexpr std::chrono::seconds max_retry_after{24 * 3600};

// How long the receiver asks us to wait: delta-seconds ("120") or an HTTP-date in any of the
// three forms recipients must accept (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
// "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994"), clamped to
// [0, max_retry_after]: a date in the past is 0. nullopt for anything else.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view text,
                                                      std::chrono::sys_seconds now);

} // namespace adms::server::webhooks
