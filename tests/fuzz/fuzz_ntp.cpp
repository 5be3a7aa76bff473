// libFuzzer target: protocol::parse_ntp_request and build_ntp_reply (the SNTP responder's UDP
// datagrams).

#include "protocol/ntp_packet.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <chrono>

using namespace adms::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::span<const std::uint8_t> datagram{data, size};
    auto parsed = parse_ntp_request(datagram);
    FUZZ_CHECK(parsed.request.has_value() == (parsed.reason == ntp_drop_reason::none));
    if (!parsed.request) {
        return 0;
    }
    // Only client requests of version 3 or 4, at least a header long, are answered.
    const auto& request = *parsed.request;
    FUZZ_CHECK(size >= ntp_header_bytes);
    FUZZ_CHECK(request.mode == ntp_mode_client);
    FUZZ_CHECK(request.version == 3 || request.version == 4);

    ntp_reply_input input;
    input.receive = ntp_time{std::chrono::seconds{1'790'000'000}};
    input.transmit = input.receive + std::chrono::microseconds{25};
    input.reference = input.receive + std::chrono::hours{1}; // later than transmit: clamped
    auto reply = build_ntp_reply(request, input);
    // Never amplifies: the reply is one header, no longer than the request.
    FUZZ_CHECK(reply.size() == ntp_header_bytes);
    FUZZ_CHECK(reply.size() <= size);
    auto header = read_ntp_header(reply);
    FUZZ_CHECK(header.has_value());
    FUZZ_CHECK(header->mode == ntp_mode_server);
    FUZZ_CHECK(header->version == request.version);
    FUZZ_CHECK(header->poll == request.poll);
    FUZZ_CHECK(header->originate == request.transmit);
    FUZZ_CHECK(header->transmit == to_ntp_timestamp(input.transmit));
    FUZZ_CHECK(header->reference == to_ntp_timestamp(input.transmit));
    // A server reply is not itself a request this server would answer (no reflection loops).
    FUZZ_CHECK(!parse_ntp_request(reply).request);
    return 0;
}
