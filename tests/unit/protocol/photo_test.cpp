#include "protocol/photo.hpp"

#include <catch2/catch.hpp>

using adms::protocol::key_value;
using adms::protocol::parse_photo_upload;

TEST_CASE("A photo upload splits into headers and image bytes at the first NUL", "[photo]")
{
    std::string body{
        "PIN=20250101083000-7.jpg\nSN=A1\nsize=6\nCMD=uploadphoto\0\xff\xd8\0\x01\xff\xd9", 60};
    auto upload = parse_photo_upload(body);
    REQUIRE(upload);
    CHECK(upload->file_name == "20250101083000-7.jpg");
    CHECK(upload->bytes == std::string_view{"\xff\xd8\0\x01\xff\xd9", 6});
    REQUIRE(upload->headers.size() == 4);
    CHECK(upload->headers[1] == key_value{"SN", "A1"});
    CHECK(upload->headers[3] == key_value{"CMD", "uploadphoto"});
}

TEST_CASE("CRLF headers and an empty image are accepted", "[photo]")
{
    std::string body{"PIN=p.jpg\r\nsize=0\r\n\0", 20};
    auto upload = parse_photo_upload(body);
    REQUIRE(upload);
    CHECK(upload->file_name == "p.jpg");
    CHECK(upload->bytes.empty());
}

TEST_CASE("A photo upload without a NUL or a PIN is not a photo", "[photo]")
{
    CHECK_FALSE(parse_photo_upload("PIN=p.jpg\nSN=A1"));
    CHECK_FALSE(parse_photo_upload(std::string_view{"SN=A1\n\0\xff", 8}));
    CHECK_FALSE(parse_photo_upload(std::string_view{"\0", 1}));
    CHECK_FALSE(parse_photo_upload(""));
}
