#include "protocol/ntp_packet.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono;
using namespace adms::protocol;

namespace {

// The 2036 rollover: NTP era 1 starts here (2^32 s after 1900-01-01).
const ntp_time era_one = sys_days{2036y / February / 7} + 6h + 28min + 16s;

// A client request as a real SNTP client sends it: 48 bytes, LI 0, the version and mode given,
// poll 6 and a transmit timestamp.
std::vector<std::uint8_t> request_bytes(unsigned version, unsigned mode, std::size_t size = 48)
{
    ntp_header h;
    h.version = static_cast<std::uint8_t>(version);
    h.mode = static_cast<std::uint8_t>(mode);
    h.poll = 6;
    h.transmit = {0xE9AB'CDEF, 0x1234'5678};
    auto bytes = write_ntp_header(h);
    std::vector<std::uint8_t> out(bytes.begin(), bytes.end());
    out.resize(size, 0xAB);
    return out;
}

// A reply's fields read back.
ntp_header read_reply(const std::array<std::uint8_t, ntp_header_bytes>& bytes)
{
    auto header = read_ntp_header(bytes);
    REQUIRE(header);
    return *header;
}

} // namespace

TEST_CASE("NTP timestamps count from 1900 with a 2^-32 s fraction", "[ntp]")
{
    CHECK(to_ntp_timestamp(ntp_time{}) == ntp_timestamp{2'208'988'800u, 0});
    CHECK(to_ntp_timestamp(ntp_time{} + 500ms) == ntp_timestamp{2'208'988'800u, 0x8000'0000u});
    CHECK(to_ntp_timestamp(ntp_time{} + 250ms) == ntp_timestamp{2'208'988'800u, 0x4000'0000u});
    // 1 ns is 4.29 units: rounded to 4; 999 999 999 ns is 4294967291.7: rounded to ...292.
    CHECK(to_ntp_timestamp(ntp_time{} + 1ns).fraction == 4);
    CHECK(to_ntp_timestamp(ntp_time{} + 999'999'999ns).fraction == 0xFFFF'FFFCu);
    CHECK(to_ntp_timestamp(sys_days{1900y / January / 1}) == ntp_timestamp{0, 0});
    // 2026-01-29 19:47:20 UTC, the same instant as Unix time 1769716040.
    CHECK(to_ntp_timestamp(ntp_time{seconds{1'769'716'040}}).seconds ==
          1'769'716'040u + 2'208'988'800u);
}

TEST_CASE("NTP timestamps wrap at the 2036 era boundary", "[ntp]")
{
    CHECK(to_ntp_timestamp(era_one) == ntp_timestamp{0, 0});
    CHECK(to_ntp_timestamp(era_one - 1s) == ntp_timestamp{0xFFFF'FFFFu, 0});
    CHECK(to_ntp_timestamp(era_one + 1s + 500ms) == ntp_timestamp{1, 0x8000'0000u});
    // Read back in the era nearest the pivot.
    auto in_2030 = ntp_time{sys_days{2030y / June / 1}};
    auto in_2040 = ntp_time{sys_days{2040y / June / 1}};
    CHECK(from_ntp_timestamp({0, 0}, in_2030) == era_one);
    CHECK(from_ntp_timestamp({0, 0}, in_2040) == era_one);
    CHECK(from_ntp_timestamp({0xFFFF'FFFFu, 0}, in_2040) == era_one - 1s);
    CHECK(from_ntp_timestamp({5, 0}, in_2030) == era_one + 5s);
    // Far from the pivot, the same wire value is era 0.
    CHECK(from_ntp_timestamp({0, 0}, ntp_time{sys_days{1950y / January / 1}}) ==
          ntp_time{sys_days{1900y / January / 1}});
    CHECK(from_ntp_timestamp({0x8000'0000u, 0}, ntp_time{sys_days{1970y / January / 1}}) ==
          ntp_time{sys_days{1968y / January / 20}} + 3h + 14min + 8s);
}

TEST_CASE("NTP timestamps round-trip to the nanosecond in every era", "[ntp]")
{
    std::vector<ntp_time> instants{
        ntp_time{},
        ntp_time{sys_days{1900y / January / 1}} + 1ns,
        ntp_time{sys_days{1968y / January / 20}} + 3h + 14min + 7s + 999'999'999ns,
        ntp_time{sys_days{2026y / May / 4}} + 8h + 123'456'789ns,
        era_one - 1ns,
        era_one,
        era_one + 1ns,
        ntp_time{sys_days{2100y / March / 1}} + 500'000'001ns,
    };
    // Every nanosecond offset class of a second, sampled densely.
    for (std::int64_t ns = 0; ns < 1'000'000'000; ns += 9'999'991) {
        instants.push_back(ntp_time{sys_days{2026y / January / 1}} + nanoseconds{ns});
        instants.push_back(era_one + nanoseconds{ns});
    }
    for (auto t : instants) {
        INFO(t.time_since_epoch().count());
        CHECK(from_ntp_timestamp(to_ntp_timestamp(t), t) == t);
        // A pivot 60 years off still finds the right era.
        CHECK(from_ntp_timestamp(to_ntp_timestamp(t), t + hours{24 * 365 * 60}) == t);
        CHECK(from_ntp_timestamp(to_ntp_timestamp(t), t - hours{24 * 365 * 60}) == t);
    }
}

TEST_CASE("A fraction that rounds up to a whole second carries into the seconds", "[ntp]")
{
    auto base = ntp_time{sys_days{2026y / January / 1}};
    auto ts = to_ntp_timestamp(base);
    ts.fraction = 0xFFFF'FFFFu; // 999 999 999.77 ns
    CHECK(from_ntp_timestamp(ts, base) == base + 1s);
    ts.fraction = 0xFFFF'FFFBu; // 999 999 998.9 ns
    CHECK(from_ntp_timestamp(ts, base) == base + 999'999'999ns);
}

TEST_CASE("Short-format durations are 16.16 seconds, rounded up and saturated", "[ntp]")
{
    CHECK(to_ntp_short(0ns) == 0);
    CHECK(to_ntp_short(-5s) == 0);
    CHECK(to_ntp_short(1s) == 0x0001'0000u);
    CHECK(to_ntp_short(500ms) == 0x0000'8000u);
    CHECK(to_ntp_short(16s) == 0x0010'0000u);
    CHECK(to_ntp_short(1ns) == 1);      // never understated
    CHECK(to_ntp_short(15'258ns) == 1); // 0.99996 units
    CHECK(to_ntp_short(15'259ns) == 2); // 1.00001 units
    CHECK(to_ntp_short(65535s) == 0xFFFF'0000u);
    CHECK(to_ntp_short(70000s) == 0xFFFF'FFFFu);
    CHECK(to_ntp_short(hours{1'000'000}) == 0xFFFF'FFFFu);
    CHECK(from_ntp_short(0x0001'0000u) == 1s);
    CHECK(from_ntp_short(0x0000'8000u) == 500ms);
    CHECK(from_ntp_short(1) == 15'259ns);
    CHECK(from_ntp_short(to_ntp_short(16'000'000us)) == 16s);
}

TEST_CASE("Precision is the smallest power of two not finer than the clock's resolution", "[ntp]")
{
    CHECK(ntp_precision(1ns) == -29);
    CHECK(ntp_precision(0ns) == -29);
    CHECK(ntp_precision(1us) == -19);
    CHECK(ntp_precision(4ms) == -7);
    CHECK(ntp_precision(1s) == 0);
    CHECK(ntp_precision(3s) == 2);
}

TEST_CASE("Every header field survives writing and reading", "[ntp]")
{
    ntp_header h;
    h.leap = ntp_leap::delete_second;
    h.version = 3;
    h.mode = 5;
    h.stratum = 7;
    h.poll = -3;
    h.precision = -29;
    h.root_delay = 0x0102'0304u;
    h.root_dispersion = 0x0506'0708u;
    h.reference_id = {'L', 'O', 'C', 'L'};
    h.reference = {1, 2};
    h.originate = {3, 4};
    h.receive = {5, 6};
    h.transmit = {0xFFFF'FFFFu, 0x8000'0001u};
    auto bytes = write_ntp_header(h);
    CHECK(bytes[0] == (2 << 6 | 3 << 3 | 5));
    CHECK(bytes[1] == 7);
    CHECK(bytes[2] == 0xFD);
    CHECK(bytes[3] == 0xE3);
    CHECK(bytes[4] == 0x01);
    CHECK(bytes[11] == 0x08);
    CHECK(bytes[12] == 'L');
    CHECK(bytes[47] == 0x01);
    CHECK(read_ntp_header(bytes) == h);
}

TEST_CASE("Only version 3 and 4 client requests of 48 bytes or more are answered", "[ntp]")
{
    for (unsigned version = 0; version < 8; ++version) {
        for (unsigned mode = 0; mode < 8; ++mode) {
            INFO("version " << version << " mode " << mode);
            auto parsed = parse_ntp_request(request_bytes(version, mode));
            bool answered = (version == 3 || version == 4) && mode == 3;
            CHECK(parsed.request.has_value() == answered);
            if (answered) {
                CHECK(parsed.reason == ntp_drop_reason::none);
            } else if (version != 3 && version != 4) {
                CHECK(parsed.reason == ntp_drop_reason::unsupported_version);
            } else {
                CHECK(parsed.reason == ntp_drop_reason::not_client_mode);
            }
        }
    }
    // Control (mode 6) and private (mode 7, monlist) queries are dropped whatever their size.
    CHECK(parse_ntp_request(request_bytes(2, 7, 8)).reason == ntp_drop_reason::too_short);
    CHECK(parse_ntp_request(request_bytes(2, 7, 48)).reason ==
          ntp_drop_reason::unsupported_version);
    CHECK(parse_ntp_request(request_bytes(4, 7, 200)).reason == ntp_drop_reason::not_client_mode);
    CHECK(parse_ntp_request(request_bytes(4, 6, 12)).reason == ntp_drop_reason::too_short);
    CHECK(parse_ntp_request(request_bytes(4, 6, 48)).reason == ntp_drop_reason::not_client_mode);
}

TEST_CASE("Short datagrams are dropped and longer ones are read up to the header", "[ntp]")
{
    CHECK(parse_ntp_request({}).reason == ntp_drop_reason::too_short);
    CHECK(parse_ntp_request(request_bytes(4, 3, 1)).reason == ntp_drop_reason::too_short);
    CHECK(parse_ntp_request(request_bytes(4, 3, 47)).reason == ntp_drop_reason::too_short);
    CHECK_FALSE(read_ntp_header(request_bytes(4, 3, 47)));
    auto exact = parse_ntp_request(request_bytes(4, 3, 48));
    REQUIRE(exact.request);
    // A MAC (20 bytes) or extension fields after the header change nothing.
    for (std::size_t size : {68u, 72u, 100u, 1000u}) {
        auto longer = parse_ntp_request(request_bytes(4, 3, size));
        REQUIRE(longer.request);
        CHECK(*longer.request == *exact.request);
    }
}

TEST_CASE("A synchronised reply echoes version and poll and copies the transmit timestamp", "[ntp]")
{
    auto receive = ntp_time{sys_days{2026y / May / 4}} + 8h + 250ms + 17ns;
    ntp_reply_input input;
    input.leap = ntp_leap::none;
    input.stratum = 4;
    input.precision = -29;
    input.root_delay = 0ns;
    input.root_dispersion = 12ms;
    input.reference_id = {127, 0, 0, 1};
    input.reference = receive - 64s;
    input.receive = receive;
    input.transmit = receive + 30us;
    for (unsigned version : {3u, 4u}) {
        auto request_raw = request_bytes(version, 3, 68);
        auto request = parse_ntp_request(request_raw).request;
        REQUIRE(request);
        auto bytes = build_ntp_reply(*request, input);
        static_assert(sizeof(bytes) == 48);
        CHECK(bytes[0] == (version << 3 | 4)); // LI 0, the request's version, mode 4
        // Originate is the request's transmit field, byte for byte.
        CHECK(std::equal(bytes.begin() + 24, bytes.begin() + 32, request_raw.begin() + 40));
        auto reply = read_reply(bytes);
        CHECK(reply.leap == ntp_leap::none);
        CHECK(reply.version == version);
        CHECK(reply.mode == 4);
        CHECK(reply.stratum == 4);
        CHECK(reply.poll == 6);
        CHECK(reply.precision == -29);
        CHECK(reply.root_delay == 0);
        CHECK(from_ntp_short(reply.root_dispersion) >= 12ms);
        CHECK(from_ntp_short(reply.root_dispersion) < 12ms + 16us);
        CHECK(reply.reference_id == std::array<std::uint8_t, 4>{127, 0, 0, 1});
        CHECK(reply.originate == ntp_timestamp{0xE9AB'CDEF, 0x1234'5678});
        CHECK(from_ntp_timestamp(reply.receive, receive) == receive);
        CHECK(from_ntp_timestamp(reply.transmit, receive) == receive + 30us);
        CHECK(from_ntp_timestamp(reply.reference, receive) == receive - 64s);
    }
}

TEST_CASE("Leap and stratum say what they are given: alarm, insert, delete", "[ntp]")
{
    auto request = parse_ntp_request(request_bytes(4, 3)).request;
    REQUIRE(request);
    ntp_reply_input input;
    input.receive = ntp_time{sys_days{2026y / June / 30}} + 12h;
    input.transmit = input.receive;

    // Unsynchronised: alarm, stratum 16, no reference time.
    input.leap = ntp_leap::alarm;
    input.stratum = 16;
    auto unsynced = build_ntp_reply(*request, input);
    CHECK(unsynced[0] == 0xE4); // LI 3, VN 4, mode 4
    CHECK(unsynced[1] == 16);
    CHECK(read_reply(unsynced).reference == ntp_timestamp{0, 0});

    input.stratum = 3;
    input.leap = ntp_leap::insert_second;
    CHECK(build_ntp_reply(*request, input)[0] == (1 << 6 | 4 << 3 | 4));
    input.leap = ntp_leap::delete_second;
    CHECK(build_ntp_reply(*request, input)[0] == (2 << 6 | 4 << 3 | 4));
    input.leap = ntp_leap::none;
    CHECK(build_ntp_reply(*request, input)[0] == 0x24);
}

TEST_CASE("A reference time after the transmit time is sent as the transmit time", "[ntp]")
{
    auto request = parse_ntp_request(request_bytes(4, 3)).request;
    REQUIRE(request);
    ntp_reply_input input;
    input.receive = ntp_time{sys_days{2026y / June / 30}};
    input.transmit = input.receive + 1ms;
    input.reference = input.transmit + 5s; // the host clock was stepped back since
    auto reply = read_reply(build_ntp_reply(*request, input));
    CHECK(reply.reference == reply.transmit);
}

TEST_CASE("The reply to a request across the 2036 rollover carries era-1 timestamps", "[ntp]")
{
    auto request = parse_ntp_request(request_bytes(3, 3)).request;
    REQUIRE(request);
    ntp_reply_input input;
    input.leap = ntp_leap::none;
    input.stratum = 2;
    input.receive = era_one - 1ms;
    input.transmit = era_one + 1ms;
    auto reply = read_reply(build_ntp_reply(*request, input));
    CHECK(reply.receive.seconds == 0xFFFF'FFFFu);
    CHECK(reply.transmit.seconds == 0);
    CHECK(from_ntp_timestamp(reply.transmit, era_one) -
              from_ntp_timestamp(reply.receive, era_one) ==
          2ms);
}
