#include "protocol/attlog.hpp"
#include "protocol/civil_time.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

using adms::protocol::attendance_record;
using adms::protocol::format_civil_time;
using adms::protocol::parse_attlog;
using namespace std::string_literals;

namespace {

// Non-blank lines of `body`, counted independently of the parser: LF-split, one CR stripped.
std::size_t count_non_blank_lines(std::string_view body)
{
    std::size_t count = 0;
    while (!body.empty()) {
        auto end = body.find('\n');
        std::string_view line = body.substr(0, end);
        body = end == std::string_view::npos ? std::string_view{} : body.substr(end + 1);
        if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
            ++count;
        }
    }
    return count;
}

} // namespace

TEST_CASE("A typical seven-field ATTLOG line becomes one record", "[attlog]")
{
    auto result = parse_attlog("1\t2025-03-14 08:01:02\t0\t1\t\t0\t0\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    const auto& record = result.records[0];
    CHECK(record.pin == "1");
    CHECK(format_civil_time(record.time) == "2025-03-14 08:01:02");
    CHECK(record.status == 0);
    CHECK(record.verify == 1);
    CHECK(record.work_code == "");
    CHECK(record.extra_fields == std::vector<std::string>{"0", "0"});
    CHECK_FALSE(record.sequence.has_value());
}

TEST_CASE("LF, CRLF and mixed line endings read the same", "[attlog]")
{
    std::string lf = "1\t2025-03-14 08:00:00\t0\t1\n2\t2025-03-14 08:00:01\t1\t15\n";
    std::string crlf = "1\t2025-03-14 08:00:00\t0\t1\r\n2\t2025-03-14 08:00:01\t1\t15\r\n";
    std::string mixed = "1\t2025-03-14 08:00:00\t0\t1\r\n2\t2025-03-14 08:00:01\t1\t15\n";
    std::string no_final_newline = "1\t2025-03-14 08:00:00\t0\t1\r\n2\t2025-03-14 08:00:01\t1\t15";
    auto expected = parse_attlog(lf);
    REQUIRE(expected.records.size() == 2);
    REQUIRE(expected.rejected.empty());
    CHECK(expected.records[1].pin == "2");
    CHECK(format_civil_time(expected.records[1].time) == "2025-03-14 08:00:01");
    CHECK(expected.records[1].status == 1);
    CHECK(expected.records[1].verify == 15);
    for (const auto& body : {crlf, mixed, no_final_newline}) {
        auto result = parse_attlog(body);
        CHECK(result.rejected.empty());
        CHECK(result.records == expected.records);
    }
}

TEST_CASE("A CR is stripped only at the end of a line", "[attlog]")
{
    // A CR inside the work code stays; only the one before LF goes.
    auto result = parse_attlog("7\t2025-03-14 08:00:00\t0\t1\tA\rB\r\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].work_code == "A\rB");
}

TEST_CASE("ATTLOG lines with 4 to 12 fields are accepted", "[attlog]")
{
    SECTION("4 fields: no work code")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t4");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].work_code == "");
        CHECK(result.records[0].extra_fields.empty());
        CHECK_FALSE(result.records[0].sequence);
    }
    SECTION("5 fields: a work code")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t4\t17");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].work_code == "17");
        CHECK(result.records[0].extra_fields.empty());
    }
    SECTION("7 fields: two reserved fields")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t4\t\t0\t0");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].extra_fields == std::vector<std::string>{"0", "0"});
    }
    SECTION("10 fields: mask flag and temperatures")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t15\t\t0\t0\t1\t36.5\t97.7");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].verify == 15);
        CHECK(result.records[0].extra_fields ==
              std::vector<std::string>{"0", "0", "1", "36.5", "97.7"});
        CHECK_FALSE(result.records[0].sequence);
    }
    SECTION("11 fields: a sequence number in field 11")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t15\t\t0\t0\t0\t0\t0\t4711");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].extra_fields ==
              std::vector<std::string>{"0", "0", "0", "0", "0", "4711"});
        REQUIRE(result.records[0].sequence);
        CHECK(*result.records[0].sequence == 4711);
    }
    SECTION("12 fields: the sequence stays field 11, field 12 is kept")
    {
        auto result = parse_attlog("10\t2025-01-02 03:04:05\t1\t15\t5\t0\t0\t0\t0\t0\t99\tX");
        REQUIRE(result.records.size() == 1);
        CHECK(result.records[0].work_code == "5");
        CHECK(result.records[0].extra_fields ==
              std::vector<std::string>{"0", "0", "0", "0", "0", "99", "X"});
        REQUIRE(result.records[0].sequence);
        CHECK(*result.records[0].sequence == 99);
    }
}

TEST_CASE("A trailing TAB gives an empty last field and is accepted", "[attlog]")
{
    auto four = parse_attlog("3\t2025-01-02 03:04:05\t0\t1\t\n");
    REQUIRE(four.records.size() == 1);
    CHECK(four.records[0].work_code == "");
    CHECK(four.records[0].extra_fields.empty());

    auto seven = parse_attlog("3\t2025-01-02 03:04:05\t0\t1\t9\t0\t0\t\r\n");
    REQUIRE(seven.records.size() == 1);
    CHECK(seven.records[0].work_code == "9");
    CHECK(seven.records[0].extra_fields == std::vector<std::string>{"0", "0", ""});
}

TEST_CASE("The sequence field is used only when it is all digits", "[attlog]")
{
    std::string prefix = "1\t2025-01-02 03:04:05\t0\t1\t\t0\t0\t0\t0\t0\t";
    auto sequence_of = [&](const std::string& field) {
        auto result = parse_attlog(prefix + field);
        REQUIRE(result.records.size() == 1);
        return result.records[0].sequence;
    };
    CHECK(sequence_of("0") == std::optional<std::uint64_t>{0});
    CHECK(sequence_of("000123") == std::optional<std::uint64_t>{123});
    CHECK(sequence_of("18446744073709551615") ==
          std::optional<std::uint64_t>{18446744073709551615u});
    CHECK_FALSE(sequence_of("18446744073709551616")); // overflows 64 bits
    CHECK_FALSE(sequence_of(""));
    CHECK_FALSE(sequence_of("12a"));
    CHECK_FALSE(sequence_of("-5"));
    CHECK_FALSE(sequence_of(" 5"));
    CHECK_FALSE(sequence_of("36.5"));
}

TEST_CASE("PINs are kept as strings", "[attlog]")
{
    auto result = parse_attlog("007\t2025-01-02 03:04:05\t0\t1\n"
                               "A12-b\t2025-01-02 03:04:05\t0\t1\n"
                               "0\t2025-01-02 03:04:05\t0\t1\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 3);
    CHECK(result.records[0].pin == "007");
    CHECK(result.records[1].pin == "A12-b");
    CHECK(result.records[2].pin == "0");
}

TEST_CASE("PINs that are empty, too long or hold control bytes are rejected", "[attlog]")
{
    std::string pin64(64, '9');
    std::string pin65(65, '9');
    std::string body = "\t2025-01-02 03:04:05\t0\t1\n" + pin64 + "\t2025-01-02 03:04:05\t0\t1\n" +
                       pin65 + "\t2025-01-02 03:04:05\t0\t1\n" +
                       "1\0002\t2025-01-02 03:04:05\t0\t1\n"s;
    auto result = parse_attlog(body);
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].pin == pin64);
    REQUIRE(result.rejected.size() == 3);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "empty PIN");
    CHECK(result.rejected[1].line_number == 3);
    CHECK(result.rejected[1].reason == "PIN longer than 64 bytes (65)");
    CHECK(result.rejected[2].line_number == 4);
    CHECK(result.rejected[2].reason == "PIN has control characters '1?2'");
    CHECK(result.rejected[2].text == "1\0002\t2025-01-02 03:04:05\t0\t1"s);
}

TEST_CASE("Status and verify are opaque integers", "[attlog]")
{
    auto result = parse_attlog("1\t2025-01-02 03:04:05\t255\t255\n"
                               "2\t2025-01-02 03:04:05\t-1\t0\n"
                               "3\t2025-01-02 03:04:05\t2147483647\t-2147483648\n"
                               "4\t2025-01-02 03:04:05\t 5 \t4\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 4);
    CHECK(result.records[0].status == 255);
    CHECK(result.records[0].verify == 255);
    CHECK(result.records[1].status == -1);
    CHECK(result.records[2].status == 2147483647);
    CHECK(result.records[2].verify == -2147483648);
    CHECK(result.records[3].status == 5);
}

TEST_CASE("Non-numeric status or verify rejects the line with a specific reason", "[attlog]")
{
    auto result = parse_attlog("1\t2025-01-02 03:04:05\tin\t1\n"
                               "2\t2025-01-02 03:04:05\t0\tface\n"
                               "3\t2025-01-02 03:04:05\t\t1\n"
                               "4\t2025-01-02 03:04:05\t2147483648\t1\n"
                               "5\t2025-01-02 03:04:05\t+1\t1\n"
                               "6\t2025-01-02 03:04:05\t1.0\t1\n");
    CHECK(result.records.empty());
    REQUIRE(result.rejected.size() == 6);
    CHECK(result.rejected[0].reason == "status is not a number 'in'");
    CHECK(result.rejected[1].reason == "verify is not a number 'face'");
    CHECK(result.rejected[2].reason == "status is not a number ''");
    CHECK(result.rejected[3].reason == "status is not a number '2147483648'");
    CHECK(result.rejected[4].reason == "status is not a number '+1'");
    CHECK(result.rejected[5].reason == "status is not a number '1.0'");
}

TEST_CASE("Impossible or malformed times reject the line", "[attlog]")
{
    auto result = parse_attlog("1\t2025-02-30 08:00:00\t0\t1\n"
                               "2\t2025-03-14 25:00:00\t0\t1\n"
                               "3\t2025-03-14 12:60:00\t0\t1\n"
                               "4\t2025-03-14 8:00:00\t0\t1\n"
                               "5\t\t0\t1\n"
                               "6\t2024-02-29 23:59:59\t0\t1\n"
                               "7\t2025-03-14T08:00:00\t0\t1\n");
    REQUIRE(result.rejected.size() == 5);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "bad time '2025-02-30 08:00:00'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[1].reason == "bad time '2025-03-14 25:00:00'");
    CHECK(result.rejected[2].reason == "bad time '2025-03-14 12:60:00'");
    CHECK(result.rejected[3].reason == "bad time '2025-03-14 8:00:00'");
    CHECK(result.rejected[4].reason == "bad time ''");
    REQUIRE(result.records.size() == 2);
    CHECK(format_civil_time(result.records[0].time) == "2024-02-29 23:59:59");
    CHECK(format_civil_time(result.records[1].time) == "2025-03-14 08:00:00");
}

TEST_CASE("Lines with fewer than four fields are rejected", "[attlog]")
{
    auto result =
        parse_attlog("1\n1\t2025-01-02 03:04:05\n1\t2025-01-02 03:04:05\t0\nhello world\n");
    CHECK(result.records.empty());
    REQUIRE(result.rejected.size() == 4);
    CHECK(result.rejected[0].reason == "too few fields (1)");
    CHECK(result.rejected[1].reason == "too few fields (2)");
    CHECK(result.rejected[2].reason == "too few fields (3)");
    CHECK(result.rejected[2].text == "1\t2025-01-02 03:04:05\t0");
    CHECK(result.rejected[3].reason == "too few fields (1)");
    CHECK(result.rejected[3].line_number == 4);
}

TEST_CASE("Space-separated fields are not split: TAB is the only separator", "[attlog]")
{
    auto result = parse_attlog("1 2025-01-02 03:04:05 0 1\n");
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].reason == "too few fields (1)");
}

TEST_CASE("Blank lines are skipped but still counted for line numbers", "[attlog]")
{
    std::string body = "\n"
                       "1\t2025-01-02 03:04:05\t0\t1\n"
                       "\r\n"
                       "   \n"
                       "\t\t\n"
                       "2\tbad\t0\t1\n"
                       "\n"
                       "3\t2025-01-02 03:04:06\t1\t1\n"
                       "\n";
    auto result = parse_attlog(body);
    REQUIRE(result.records.size() == 2);
    CHECK(result.records[0].pin == "1");
    CHECK(result.records[1].pin == "3");
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].line_number == 6);
    CHECK(result.rejected[0].text == "2\tbad\t0\t1");
    CHECK(result.rejected[0].reason == "bad time 'bad'");
}

TEST_CASE("An empty body gives nothing", "[attlog]")
{
    auto result = parse_attlog("");
    CHECK(result.records.empty());
    CHECK(result.rejected.empty());
    auto blanks = parse_attlog("\n\r\n\n");
    CHECK(blanks.records.empty());
    CHECK(blanks.rejected.empty());
}

TEST_CASE("Rejected lines keep their line numbers and good lines around them survive", "[attlog]")
{
    std::string body = "100\t2025-06-01 07:59:58\t0\t1\t\t0\t0\r\n"
                       "101\t2025-06-31 08:00:00\t0\t1\t\t0\t0\r\n"
                       "102\t2025-06-01 08:00:03\t0\t4\t\t0\t0\r\n"
                       "\r\n"
                       "103\t2025-06-01 08:00:04\tx\t4\t\t0\t0\r\n"
                       "104\t2025-06-01 08:00:05\t1\t15\t\t0\t0\r\n";
    auto result = parse_attlog(body);
    REQUIRE(result.records.size() == 3);
    CHECK(result.records[0].pin == "100");
    CHECK(result.records[1].pin == "102");
    CHECK(result.records[2].pin == "104");
    CHECK(format_civil_time(result.records[2].time) == "2025-06-01 08:00:05");
    REQUIRE(result.rejected.size() == 2);
    CHECK(result.rejected[0].line_number == 2);
    CHECK(result.rejected[0].text == "101\t2025-06-31 08:00:00\t0\t1\t\t0\t0");
    CHECK(result.rejected[0].reason == "bad time '2025-06-31 08:00:00'");
    CHECK(result.rejected[1].line_number == 5);
    CHECK(result.rejected[1].text == "103\t2025-06-01 08:00:04\tx\t4\t\t0\t0");
    CHECK(result.rejected[1].reason == "status is not a number 'x'");
}

TEST_CASE("A realistic 128-line batch parses completely", "[attlog]")
{
    std::string body;
    for (int i = 0; i < 128; ++i) {
        char line[96];
        std::snprintf(line, sizeof line, "%05d\t2025-03-14 %02d:%02d:%02d\t%d\t%d\t\t0\t0\t\t\r\n",
                      1000 + i, 6 + i / 60, i % 60, (i * 7) % 60, i % 2, i % 3 == 0 ? 15 : 1);
        body += line;
    }
    auto result = parse_attlog(body);
    CHECK(result.rejected.empty());
    REQUIRE(result.records.size() == 128);
    CHECK(result.records[0].pin == "01000");
    CHECK(format_civil_time(result.records[0].time) == "2025-03-14 06:00:00");
    CHECK(result.records[0].status == 0);
    CHECK(result.records[0].verify == 15);
    CHECK(result.records[0].extra_fields == std::vector<std::string>{"0", "0", "", ""});
    CHECK(result.records[127].pin == "01127");
    CHECK(format_civil_time(result.records[127].time) == "2025-03-14 08:07:49");
    CHECK(result.records[127].status == 1);
    CHECK(result.records[127].verify == 1);
}

TEST_CASE("Binary junk is rejected, never crashes", "[attlog]")
{
    std::string junk = "\x00\x01\xff\xfe\t\x80\x81\t\x00\t\x00\n\xc3\x28\t\xa0\xa1\n"s;
    REQUIRE(junk.size() == 18);
    auto result = parse_attlog(junk);
    CHECK(result.records.empty());
    REQUIRE(result.rejected.size() == 2);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].text == "\x00\x01\xff\xfe\t\x80\x81\t\x00\t\x00"s);
    CHECK(result.rejected[0].reason == "PIN has control characters '\?\?\?\?'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[1].reason == "too few fields (2)");
}

TEST_CASE("Invalid UTF-8 in a PIN is kept as bytes", "[attlog]")
{
    auto result = parse_attlog("\xc3\x28\t2025-01-02 03:04:05\t0\t1\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].pin == "\xc3\x28");
}

TEST_CASE("Rejection reasons stay short and printable for huge or binary fields", "[attlog]")
{
    std::string long_time(1000, '\x01');
    auto result = parse_attlog("1\t" + long_time + "\t0\t1\n");
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].reason == "bad time '" + std::string(40, '?') + "...'");
    CHECK(result.rejected[0].text.size() == 1006);
}

TEST_CASE("A 1 MB line is rejected as too long and its neighbours survive", "[attlog]")
{
    std::string huge = "1\t2025-01-02 03:04:05\t0\t1\t" + std::string(1024 * 1024, 'W');
    std::string body = "1\t2025-01-02 03:04:05\t0\t1\n" + huge + "\n2\t2025-01-02 03:04:06\t0\t1\n";
    auto result = parse_attlog(body);
    REQUIRE(result.records.size() == 2);
    CHECK(result.records[0].pin == "1");
    CHECK(result.records[1].pin == "2");
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].line_number == 2);
    CHECK(result.rejected[0].reason == "line too long (1048602 bytes)");
    CHECK(result.rejected[0].text == huge);

    auto no_newline = parse_attlog(std::string(1024 * 1024, '\0'));
    REQUIRE(no_newline.rejected.size() == 1);
    CHECK(no_newline.rejected[0].reason == "line too long (1048576 bytes)");
}

TEST_CASE("A line of exactly the length limit is still parsed", "[attlog]")
{
    std::string line = "1\t2025-01-02 03:04:05\t0\t1\t";
    line += std::string(adms::protocol::max_attlog_line_length - line.size(), 'w');
    REQUIRE(line.size() == 4096);
    auto result = parse_attlog(line);
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].work_code.size() == 4096 - 26);
    auto longer = parse_attlog(line + "w");
    REQUIRE(longer.rejected.size() == 1);
    CHECK(longer.rejected[0].reason == "line too long (4097 bytes)");
}

TEST_CASE("Thousands of random bodies never crash and every non-blank line is accounted for",
          "[attlog][fuzz]")
{
    std::mt19937 random{20250314};
    const std::string alphabet = "0123456789\t\t\t\n\n\r -:AZ";
    const std::string valid = "1\t2025-03-14 08:01:02\t0\t1\t\t0\t0\t0\t36.5\t0\t77\n";
    for (int round = 0; round < 4000; ++round) {
        std::string body;
        auto length = std::uniform_int_distribution<int>{0, 400}(random);
        int mode = round % 3;
        if (mode == 0) {
            // Raw bytes, NULs and high bytes included.
            for (int i = 0; i < length; ++i) {
                body += static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random));
            }
        } else if (mode == 1) {
            // Bytes that matter to the parser.
            for (int i = 0; i < length; ++i) {
                body += alphabet[std::uniform_int_distribution<std::size_t>{0, alphabet.size() -
                                                                                   1}(random)];
            }
        } else {
            // Valid lines with a few mutated bytes.
            for (int i = 0; i < 1 + length / 50; ++i) {
                body += valid;
            }
            for (int i = 0; i < 3; ++i) {
                auto at = std::uniform_int_distribution<std::size_t>{0, body.size() - 1}(random);
                body[at] = static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random));
            }
        }
        auto result = parse_attlog(body);
        REQUIRE(result.records.size() + result.rejected.size() == count_non_blank_lines(body));
        for (const auto& rejected : result.rejected) {
            REQUIRE(rejected.line_number >= 1);
            REQUIRE(rejected.reason.size() < 80);
        }
    }
}
