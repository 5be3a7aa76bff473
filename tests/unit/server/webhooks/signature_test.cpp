#include "server/webhooks/signature.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace adms::server::webhooks;

namespace {

secret_bytes decoded(std::string_view text)
{
    auto secret = decode_secret(text);
    REQUIRE(secret.bytes);
    return *secret.bytes;
}

// Standard padded base64 of `size` bytes of 'x' (0x78), written out by hand: "eHh4" per 3 bytes.
std::string base64_of_x(std::size_t size)
{
    std::string out;
    for (std::size_t i = 0; i + 3 <= size; i += 3) {
        out += "eHh4";
    }
    if (size % 3 == 1) {
        out += "eA==";
    } else if (size % 3 == 2) {
        out += "eHg=";
    }
    return out;
}

} // namespace

TEST_CASE("signature: the Standard Webhooks test vector signs to the published value",
          "[webhooks][signature]")
{
    auto secret = decoded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    CHECK(secret.size() == 24);
    CHECK(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})") ==
          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("signature: the id, the timestamp and every body byte are signed",
          "[webhooks][signature]")
{
    auto secret = decoded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    auto base = sign(secret, "msg_1", 1614265330, R"({"test": 1})");
    CHECK(sign(secret, "msg_2", 1614265330, R"({"test": 1})") != base);
    CHECK(sign(secret, "msg_1", 1614265331, R"({"test": 1})") != base);
    CHECK(sign(secret, "msg_1", 1614265330, R"({"test":1})") != base);
    auto other = decoded("whsec_" + base64_of_x(32));
    CHECK(sign(other, "msg_1", 1614265330, R"({"test": 1})") != base);
    CHECK(sign(secret, "msg_1", 1614265330, R"({"test": 1})") == base);
}

TEST_CASE("signature: during a rotation the header carries one signature per secret",
          "[webhooks][signature]")
{
    std::vector<secret_bytes> secrets{decoded("whsec_" + base64_of_x(32)),
                                      decoded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")};
    std::string body = R"({"test": 2432232314})";
    auto header = signature_header(secrets, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
    CHECK(header == sign(secrets[0], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) +
                        " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(signature_header(std::span{secrets}.subspan(1), "msg_p5jXN8AQM9LWM0D4loKWxJek",
                           1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(signature_header({}, "msg_1", 1, body).empty());
}

TEST_CASE("signature: generated secrets are whsec_ and 32 random bytes", "[webhooks][signature]")
{
    auto first = generate_secret();
    auto second = generate_secret();
    CHECK(first.starts_with("whsec_"));
    CHECK(first.size() == 6 + 44);
    CHECK(first != second);
    CHECK(decoded(first).size() == 32);
    CHECK(decoded(second).size() == 32);
}

TEST_CASE("signature: the whsec_ prefix is optional and every length from 24 to 64 bytes decodes",
          "[webhooks][signature]")
{
    CHECK(decoded("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") ==
          decoded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    for (std::size_t size = min_secret_bytes; size <= max_secret_bytes; ++size) {
        INFO(size);
        auto secret = decoded("whsec_" + base64_of_x(size));
        CHECK(secret == secret_bytes(size, 'x'));
    }
}

TEST_CASE("signature: bad secrets are refused with a reason that never shows the secret",
          "[webhooks][signature]")
{
    auto not_base64 = "the secret is not standard padded base64 (after the optional whsec_ prefix)";
    for (std::string text :
         {"", "whsec_", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", // not a multiple of 4
          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La=aSw",
          " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==w", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL===",
          "whsec_MfKQ9r8GKYqrTwjU-D8ILPZIo2LaLaSw"}) { // URL-safe alphabet
        INFO(text);
        auto secret = decode_secret(text);
        CHECK_FALSE(secret.bytes);
        CHECK(secret.error == not_base64);
    }
    auto short_secret = decode_secret("whsec_" + base64_of_x(23));
    CHECK_FALSE(short_secret.bytes);
    CHECK(short_secret.error ==
          "the secret is 23 bytes long; Standard Webhooks secrets are 24 to 64 bytes");
    auto long_secret = decode_secret("whsec_" + base64_of_x(65));
    CHECK_FALSE(long_secret.bytes);
    CHECK(long_secret.error ==
          "the secret is 65 bytes long; Standard Webhooks secrets are 24 to 64 bytes");
    CHECK(decode_secret("whsec_" + base64_of_x(16)).error.find("16 bytes") != std::string::npos);
}
