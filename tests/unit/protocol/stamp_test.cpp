#include "protocol/stamp.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace adms::protocol;

TEST_CASE("merge_stamp never moves a stamp backwards", "[stamp]")
{
    using s = std::optional<std::string>;
    CHECK(merge_stamp(s{"100"}, s{"50"}) == "100");
    CHECK(merge_stamp(s{"100"}, s{"200"}) == "200");
    CHECK(merge_stamp(s{"100"}, s{"0100"}) == "100");
    CHECK(merge_stamp(s{"99"}, s{"100"}) == "100");
    CHECK(merge_stamp(s{"100"}, s{"0"}) == "100");
    CHECK(merge_stamp(s{"0"}, s{"100"}) == "100");
    CHECK(merge_stamp(s{"18446744073709551616"}, s{"18446744073709551615"}) ==
          "18446744073709551616");
    CHECK(merge_stamp(s{"999999999999999999999"}, s{"1000000000000000000000"}) ==
          "1000000000000000000000");
    CHECK(merge_stamp(s{"100"}, std::nullopt) == "100");
    CHECK(merge_stamp(s{"100"}, s{""}) == "100");
    CHECK(merge_stamp(std::nullopt, s{"5"}) == "5");
    CHECK(merge_stamp(std::nullopt, std::nullopt) == std::nullopt);
    CHECK(merge_stamp(s{"abc"}, s{"abd"}) == "abd");
    CHECK(merge_stamp(s{"100"}, s{"x1"}) == "x1");
}
