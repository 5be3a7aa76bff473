#pragma once

// NTP (RFC 5905) packets as an SNTP server (RFC 4330) reads and writes them: the 48-byte header,
// its 64-bit timestamps and 32-bit short durations. Pure: "now" is always a parameter.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

namespace adms::protocol {

// A time with the resolution admsd reads clocks at.
using ntp_time = std::chrono::sys_time<std::chrono::nanoseconds>;

// An NTP timestamp as on the wire: seconds since 1900-01-01 00:00 UTC modulo 2^32 (era 0 ends in
// February 2036) and a fraction in units of 2^-32 s.
struct ntp_timestamp {
    std::uint32_t seconds = 0;
    std::uint32_t fraction = 0;
    friend bool operator==(const ntp_timestamp&, const ntp_timestamp&) = default;
};

// The leap indicator: a leap second announced for the end of the day, or the alarm state
// (clock not synchronised).
enum class ntp_leap : std::uint8_t { none = 0, insert_second = 1, delete_second = 2, alarm = 3 };

// The association modes admsd tells apart: it answers client requests only.
inline constexpr std::uint8_t ntp_mode_client = 3;
inline constexpr std::uint8_t ntp_mode_server = 4;

// The size of an NTP header without extension fields or MAC; every reply is exactly this long.
inline constexpr std::size_t ntp_header_bytes = 48;

// Every field of the 48-byte header.
struct ntp_header {
    ntp_leap leap = ntp_leap::none;
    std::uint8_t version = 4;
    std::uint8_t mode = ntp_mode_client;
    std::uint8_t stratum = 0;
    std::int8_t poll = 0;
    std::int8_t precision = 0;
    std::uint32_t root_delay = 0;      // NTP short format: 16.16 seconds
    std::uint32_t root_dispersion = 0; // NTP short format: 16.16 seconds
    std::array<std::uint8_t, 4> reference_id{};
    ntp_timestamp reference;
    ntp_timestamp originate;
    ntp_timestamp receive;
    ntp_timestamp transmit;
    friend bool operator==(const ntp_header&, const ntp_header&) = default;
};

// `t` as an NTP timestamp: seconds in its era (modulo 2^32), fraction rounded to the nearest
// 2^-32 s. Times before 1900 wrap like any other era.
ntp_timestamp to_ntp_timestamp(ntp_time t);

// The instant `ts` stands for in the era that puts it within 2^31 s (68 years) of `pivot`
// (RFC 5905, section 6), rounded to the nearest nanosecond.
ntp_time from_ntp_timestamp(ntp_timestamp ts, ntp_time pivot);

// A non-negative duration in the NTP short format (16.16 s), rounded up to the next 2^-16 s (a
// dispersion must not be understated); negative → 0, above 65535.99998 s → the largest value.
std::uint32_t to_ntp_short(std::chrono::nanoseconds d);

// The NTP short format as a duration, rounded to the nearest nanosecond.
std::chrono::nanoseconds from_ntp_short(std::uint32_t value);

// The precision field for a clock of this resolution: the smallest p with 2^p s ≥ resolution
// (1 ns → -29, 1 µs → -19, 1 s → 0), within [-64, 63].
std::int8_t ntp_precision(std::chrono::nanoseconds resolution);

// The 48 header bytes; nullopt when there are fewer. Bytes after 48 (extension fields, a MAC)
// are not looked at.
std::optional<ntp_header> read_ntp_header(std::span<const std::uint8_t> bytes);

// The 48 bytes of `header` in network order.
std::array<std::uint8_t, ntp_header_bytes> write_ntp_header(const ntp_header& header);

// Why a datagram gets no answer.
enum class ntp_drop_reason {
    none,                // a client request to answer
    too_short,           // fewer than 48 bytes
    unsupported_version, // not version 3 or 4
    not_client_mode,     // not mode 3: server, broadcast, control (6) and private (7) queries
};

// A datagram read as a client request: the header when it is one to answer, else the reason.
struct ntp_request_parse {
    std::optional<ntp_header> request;
    ntp_drop_reason reason = ntp_drop_reason::none;
};

// Reads a datagram as an SNTP client request (RFC 4330 section 5): at least 48 bytes, version 3
// or 4, mode 3. Anything after the header is ignored.
ntp_request_parse parse_ntp_request(std::span<const std::uint8_t> datagram);

// What a server reply says besides what it copies from the request.
struct ntp_reply_input {
    ntp_leap leap = ntp_leap::alarm;
    std::uint8_t stratum = 16;
    std::int8_t precision = -20;
    std::chrono::nanoseconds root_delay{0};
    std::chrono::nanoseconds root_dispersion{0};
    std::array<std::uint8_t, 4> reference_id{};
    std::optional<ntp_time> reference; // nullopt: zero on the wire (never synchronised)
    ntp_time receive;                  // when the request arrived
    ntp_time transmit;                 // when the reply leaves
};

// The server-mode reply (RFC 4330 section 5) to `request`: version and poll echoed, mode 4,
// originate = the request's transmit timestamp, always exactly 48 bytes. A reference time later
// than the transmit time (the clock was stepped back) is sent as the transmit time.
std::array<std::uint8_t, ntp_header_bytes> build_ntp_reply(const ntp_header& request,
                                                           const ntp_reply_input& input);

} // namespace adms::protocol
