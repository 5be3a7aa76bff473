#include "protocol/ntp_packet.hpp"

#include <algorithm>
#include <cmath>

namespace adms::protocol {
namespace {

// Seconds from 1900-01-01 (NTP's era 0) to 1970-01-01 (the system clock's epoch).
constexpr std::int64_t ntp_to_unix_seconds = 2'208'988'800;
constexpr std::uint64_t nanos_per_second = 1'000'000'000;

std::uint32_t read_u32(std::span<const std::uint8_t> bytes, std::size_t at)
{
    return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
           (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]};
}

void write_u32(std::array<std::uint8_t, ntp_header_bytes>& out, std::size_t at, std::uint32_t value)
{
    out[at] = static_cast<std::uint8_t>(value >> 24);
    out[at + 1] = static_cast<std::uint8_t>(value >> 16);
    out[at + 2] = static_cast<std::uint8_t>(value >> 8);
    out[at + 3] = static_cast<std::uint8_t>(value);
}

ntp_timestamp read_timestamp(std::span<const std::uint8_t> bytes, std::size_t at)
{
    return {read_u32(bytes, at), read_u32(bytes, at + 4)};
}

void write_timestamp(std::array<std::uint8_t, ntp_header_bytes>& out, std::size_t at,
                     ntp_timestamp ts)
{
    write_u32(out, at, ts.seconds);
    write_u32(out, at + 4, ts.fraction);
}

} // namespace

ntp_timestamp to_ntp_timestamp(ntp_time t)
{
    auto whole = std::chrono::floor<std::chrono::seconds>(t);
    auto sub = static_cast<std::uint64_t>((t - whole).count()); // [0, 1e9)
    // Rounded to the nearest 2^-32 s; below 1e9 ns this never reaches 2^32.
    auto fraction = ((sub << 32) + nanos_per_second / 2) / nanos_per_second;
    auto seconds =
        static_cast<std::uint64_t>(whole.time_since_epoch().count() + ntp_to_unix_seconds);
    return {static_cast<std::uint32_t>(seconds), static_cast<std::uint32_t>(fraction)};
}

ntp_time from_ntp_timestamp(ntp_timestamp ts, ntp_time pivot)
{
    auto pivot_seconds =
        std::chrono::floor<std::chrono::seconds>(pivot).time_since_epoch().count() +
        ntp_to_unix_seconds;
    // The signed 32-bit difference picks the era nearest the pivot.
    auto difference =
        static_cast<std::int32_t>(ts.seconds - static_cast<std::uint32_t>(pivot_seconds));
    auto seconds = pivot_seconds + difference - ntp_to_unix_seconds;
    auto nanos = (std::uint64_t{ts.fraction} * nanos_per_second + (std::uint64_t{1} << 31)) >> 32;
    return ntp_time{std::chrono::seconds{seconds}} +
           std::chrono::nanoseconds{static_cast<std::int64_t>(nanos)};
}

std::uint32_t to_ntp_short(std::chrono::nanoseconds d)
{
    if (d.count() <= 0) {
        return 0;
    }
    auto nanos = static_cast<std::uint64_t>(d.count());
    if (nanos >= std::uint64_t{65536} * nanos_per_second) {
        return 0xFFFF'FFFF;
    }
    auto units = ((nanos << 16) + nanos_per_second - 1) / nanos_per_second;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(units, 0xFFFF'FFFF));
}

std::chrono::nanoseconds from_ntp_short(std::uint32_t value)
{
    auto nanos = (std::uint64_t{value} * nanos_per_second + (std::uint64_t{1} << 15)) >> 16;
    return std::chrono::nanoseconds{static_cast<std::int64_t>(nanos)};
}

std::int8_t ntp_precision(std::chrono::nanoseconds resolution)
{
    double seconds =
        std::chrono::duration<double>(std::max(resolution, std::chrono::nanoseconds{1})).count();
    for (int p = -64; p < 63; ++p) {
        if (std::ldexp(1.0, p) >= seconds) {
            return static_cast<std::int8_t>(p);
        }
    }
    return 63;
}

std::optional<ntp_header> read_ntp_header(std::span<const std::uint8_t> bytes)
{
    if (bytes.size() < ntp_header_bytes) {
        return std::nullopt;
    }
    ntp_header h;
    h.leap = static_cast<ntp_leap>(bytes[0] >> 6);
    h.version = static_cast<std::uint8_t>((bytes[0] >> 3) & 0x7);
    h.mode = static_cast<std::uint8_t>(bytes[0] & 0x7);
    h.stratum = bytes[1];
    h.poll = static_cast<std::int8_t>(bytes[2]);
    h.precision = static_cast<std::int8_t>(bytes[3]);
    h.root_delay = read_u32(bytes, 4);
    h.root_dispersion = read_u32(bytes, 8);
    std::copy_n(bytes.begin() + 12, 4, h.reference_id.begin());
    h.reference = read_timestamp(bytes, 16);
    h.originate = read_timestamp(bytes, 24);
    h.receive = read_timestamp(bytes, 32);
    h.transmit = read_timestamp(bytes, 40);
    return h;
}

std::array<std::uint8_t, ntp_header_bytes> write_ntp_header(const ntp_header& h)
{
    std::array<std::uint8_t, ntp_header_bytes> out{};
    out[0] = static_cast<std::uint8_t>((static_cast<unsigned>(h.leap) & 0x3) << 6 |
                                       (h.version & 0x7) << 3 | (h.mode & 0x7));
    out[1] = h.stratum;
    out[2] = static_cast<std::uint8_t>(h.poll);
    out[3] = static_cast<std::uint8_t>(h.precision);
    write_u32(out, 4, h.root_delay);
    write_u32(out, 8, h.root_dispersion);
    std::copy(h.reference_id.begin(), h.reference_id.end(), out.begin() + 12);
    write_timestamp(out, 16, h.reference);
    write_timestamp(out, 24, h.originate);
    write_timestamp(out, 32, h.receive);
    write_timestamp(out, 40, h.transmit);
    return out;
}

ntp_request_parse parse_ntp_request(std::span<const std::uint8_t> datagram)
{
    auto header = read_ntp_header(datagram);
    if (!header) {
        return {std::nullopt, ntp_drop_reason::too_short};
    }
    if (header->version != 3 && header->version != 4) {
        return {std::nullopt, ntp_drop_reason::unsupported_version};
    }
    if (header->mode != ntp_mode_client) {
        return {std::nullopt, ntp_drop_reason::not_client_mode};
    }
    return {header, ntp_drop_reason::none};
}

std::array<std::uint8_t, ntp_header_bytes> build_ntp_reply(const ntp_header& request,
                                                           const ntp_reply_input& input)
{
    ntp_header reply;
    reply.leap = input.leap;
    reply.version = request.version;
    reply.mode = ntp_mode_server;
    reply.stratum = input.stratum;
    reply.poll = request.poll;
    reply.precision = input.precision;
    reply.root_delay = to_ntp_short(input.root_delay);
    reply.root_dispersion = to_ntp_short(input.root_dispersion);
    reply.reference_id = input.reference_id;
    if (input.reference) {
        reply.reference = to_ntp_timestamp(std::min(*input.reference, input.transmit));
    }
    reply.originate = request.transmit;
    reply.receive = to_ntp_timestamp(input.receive);
    reply.transmit = to_ntp_timestamp(input.transmit);
    return write_ntp_header(reply);
}

} // namespace adms::protocol
