#include "protocol/civil_time.hpp"
#include "protocol/operlog.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <string_view>

using adms::protocol::find_field;
using adms::protocol::format_civil_time;
using adms::protocol::key_value;
using adms::protocol::parse_operlog;
using adms::protocol::to_user_info;
using adms::protocol::user_info;
using namespace std::string_literals;

TEST_CASE("An OPLOG line becomes an oplog entry", "[operlog]")
{
    auto result = parse_operlog("OPLOG 4\t0\t2025-03-14 08:01:02\t0\t0\t0\t0\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    const auto& record = result.records[0];
    CHECK(record.tag == "OPLOG");
    CHECK(record.raw == "OPLOG 4\t0\t2025-03-14 08:01:02\t0\t0\t0\t0");
    CHECK(record.fields.empty());
    REQUIRE(record.oplog);
    CHECK(record.oplog->code == 4);
    CHECK(record.oplog->operator_id == "0");
    CHECK(format_civil_time(record.oplog->time) == "2025-03-14 08:01:02");
    CHECK(record.oplog->objects == std::vector<std::string>{"0", "0", "0", "0"});
}

TEST_CASE("OPLOG lines with few or empty objects are accepted", "[operlog]")
{
    auto result = parse_operlog("OPLOG 30\t12\t2025-03-14 08:01:02\r\n"
                                "OPLOG 6\t1\t2025-03-14 08:01:03\t\t5\t\t\n"
                                "OPLOG\t0\t0\t2025-03-14 08:01:04\t1\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 3);
    CHECK(result.records[0].oplog->code == 30);
    CHECK(result.records[0].oplog->operator_id == "12");
    CHECK(result.records[0].oplog->objects.empty());
    CHECK(result.records[1].oplog->objects == std::vector<std::string>{"", "5", "", ""});
    CHECK(result.records[2].tag == "OPLOG");
    CHECK(result.records[2].oplog->code == 0);
    CHECK(format_civil_time(result.records[2].oplog->time) == "2025-03-14 08:01:04");
}

TEST_CASE("OPLOG lines with a bad code, time or too few fields are rejected", "[operlog]")
{
    auto result = parse_operlog("OPLOG x\t0\t2025-03-14 08:01:02\t0\n"
                                "OPLOG 4\t0\t2025-02-30 08:01:02\t0\n"
                                "OPLOG 4\t0\n"
                                "OPLOG\n"
                                "OPLOG 99999999999\t0\t2025-03-14 08:01:02\n"
                                "OPLOG 1\t0\t2025-03-14 25:00:00\n"
                                "OPLOG 1\t0\t2025-03-14 23:00:00\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].oplog->code == 1);
    REQUIRE(result.rejected.size() == 6);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "OPLOG code is not a number 'x'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[1].reason == "OPLOG bad time '2025-02-30 08:01:02'");
    CHECK(result.rejected[1].text == "OPLOG 4\t0\t2025-02-30 08:01:02\t0");
    CHECK(result.rejected[2].reason == "OPLOG with too few fields (2)");
    CHECK(result.rejected[3].reason == "OPLOG with too few fields (1)");
    CHECK(result.rejected[4].reason == "OPLOG code is not a number '99999999999'");
    CHECK(result.rejected[5].line_number == 6);
    CHECK(result.rejected[5].reason == "OPLOG bad time '2025-03-14 25:00:00'");
}

TEST_CASE("A USER line keeps its key=value fields in order", "[operlog]")
{
    auto result =
        parse_operlog("USER PIN=0042\tName=Zoë Müller\tPri=14\tPasswd=123\tCard=[A1B2C3D4]"
                      "\tGrp=1\tTZ=0000000000000000\tVerify=-1\tViceCard=\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    const auto& record = result.records[0];
    CHECK(record.tag == "USER");
    CHECK_FALSE(record.oplog);
    CHECK(record.fields == std::vector<key_value>{{"PIN", "0042"},
                                                  {"Name", "Zoë Müller"},
                                                  {"Pri", "14"},
                                                  {"Passwd", "123"},
                                                  {"Card", "[A1B2C3D4]"},
                                                  {"Grp", "1"},
                                                  {"TZ", "0000000000000000"},
                                                  {"Verify", "-1"},
                                                  {"ViceCard", ""}});
    auto user = to_user_info(record);
    REQUIRE(user);
    CHECK(*user == user_info{"0042", "Zoë Müller", 14, "123", "[A1B2C3D4]", "1", "0000000000000000",
                             -1, ""});
}

TEST_CASE("A USER line with missing or odd fields still converts when it has a PIN", "[operlog]")
{
    auto result = parse_operlog("USER PIN=7\tName=\tPri=admin\n"
                                "USER Name=Nobody\tPri=0\n"
                                "USER PIN=\tName=Empty\n");
    REQUIRE(result.records.size() == 3);
    auto user = to_user_info(result.records[0]);
    REQUIRE(user);
    CHECK(user->pin == "7");
    CHECK(user->name == "");
    CHECK_FALSE(user->privilege);
    CHECK(user->password == "");
    CHECK_FALSE(user->verify);
    CHECK_FALSE(to_user_info(result.records[1]));
    CHECK_FALSE(to_user_info(result.records[2]));
}

TEST_CASE("Names are kept as raw bytes, GB18030 and invalid UTF-8 included", "[operlog]")
{
    // "张三" in GB18030, then a lone UTF-8 lead byte.
    auto result = parse_operlog("USER PIN=1\tName=\xd5\xc5\xc8\xfd\nUSER PIN=2\tName=\xc3\n");
    REQUIRE(result.records.size() == 2);
    CHECK(to_user_info(result.records[0])->name == "\xd5\xc5\xc8\xfd");
    CHECK(to_user_info(result.records[1])->name == "\xc3");
}

TEST_CASE("to_user_info ignores records that are not USER lines", "[operlog]")
{
    auto result = parse_operlog("FP PIN=1\tFID=0\tSize=4\tValid=1\tTMP=AAAA\n"
                                "OPLOG 0\t0\t2025-03-14 08:01:02\n");
    REQUIRE(result.records.size() == 2);
    CHECK_FALSE(to_user_info(result.records[0]));
    CHECK_FALSE(to_user_info(result.records[1]));
}

TEST_CASE("Values split at the first '=' so base64 padding survives", "[operlog]")
{
    auto result = parse_operlog("FP PIN=1\tFID=6\tSize=8\tValid=1\tTMP=TUlLRQ==\n");
    REQUIRE(result.records.size() == 1);
    const auto& record = result.records[0];
    CHECK(record.tag == "FP");
    CHECK(record.fields ==
          std::vector<key_value>{
              {"PIN", "1"}, {"FID", "6"}, {"Size", "8"}, {"Valid", "1"}, {"TMP", "TUlLRQ=="}});
    CHECK(find_field(record, "TMP") == std::optional<std::string_view>{"TUlLRQ=="});
    CHECK(find_field(record, "FID") == std::optional<std::string_view>{"6"});
    CHECK_FALSE(find_field(record, "tmp"));
    CHECK_FALSE(find_field(record, "Missing"));
}

TEST_CASE("find_field returns the first of repeated keys", "[operlog]")
{
    auto result = parse_operlog("USER PIN=1\tPIN=2\n");
    REQUIRE(result.records.size() == 1);
    CHECK(find_field(result.records[0], "PIN") == std::optional<std::string_view>{"1"});
}

TEST_CASE("Items without '=' become keys with empty values and empty items are skipped",
          "[operlog]")
{
    auto result = parse_operlog("FACE PIN=3\t\tflag\tFID=0\t\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].fields ==
          std::vector<key_value>{{"PIN", "3"}, {"flag", ""}, {"FID", "0"}});
}

TEST_CASE("A body mixing every tag keeps order, tags and raw lines", "[operlog]")
{
    std::string body = "OPLOG 0\t0\t2025-03-14 07:00:00\t0\t0\t0\t0\r\n"
                       "USER PIN=5\tName=Ann\tPri=0\tPasswd=\tCard=\tGrp=1\tTZ=0\tVerify=0\r\n"
                       "FP PIN=5\tFID=1\tSize=8\tValid=1\tTMP=QUJDREVGRw==\r\n"
                       "\r\n"
                       "FACE PIN=5\tFID=50\tSIZE=4\tVALID=1\tTMP=AAAA\r\n"
                       "BIOPHOTO PIN=5\tFileName=5.jpg\tType=9\tSize=4\tContent=/9j/\r\n"
                       "USERPIC PIN=5\tFileName=5.jpg\tSize=4\tContent=/9j/\r\n"
                       "ERRORLOG ErrCode=0x0001\tErrMsg=something odd\r\n"
                       "=junk\r\n"
                       "OPLOG 5\t0\t2025-03-14 07:00:01\t1\t2\t3\t4\r\n";
    auto result = parse_operlog(body);
    REQUIRE(result.records.size() == 8);
    CHECK(result.records[0].tag == "OPLOG");
    CHECK(result.records[0].oplog->code == 0);
    CHECK(result.records[1].tag == "USER");
    CHECK(to_user_info(result.records[1])->name == "Ann");
    CHECK(result.records[2].tag == "FP");
    CHECK(find_field(result.records[2], "TMP") == std::optional<std::string_view>{"QUJDREVGRw=="});
    CHECK(result.records[3].tag == "FACE");
    CHECK(result.records[3].raw == "FACE PIN=5\tFID=50\tSIZE=4\tVALID=1\tTMP=AAAA");
    CHECK(find_field(result.records[3], "FID") == std::optional<std::string_view>{"50"});
    CHECK(result.records[4].tag == "BIOPHOTO");
    CHECK(find_field(result.records[4], "Type") == std::optional<std::string_view>{"9"});
    CHECK(result.records[5].tag == "USERPIC");
    CHECK(find_field(result.records[5], "Content") == std::optional<std::string_view>{"/9j/"});
    CHECK(result.records[6].tag == "ERRORLOG");
    CHECK(result.records[6].raw == "ERRORLOG ErrCode=0x0001\tErrMsg=something odd");
    CHECK(result.records[6].fields ==
          std::vector<key_value>{{"ErrCode", "0x0001"}, {"ErrMsg", "something odd"}});
    CHECK(result.records[7].oplog->objects == std::vector<std::string>{"1", "2", "3", "4"});
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].line_number == 9);
    CHECK(result.rejected[0].text == "=junk");
    CHECK(result.rejected[0].reason == "no tag at the start of the line '=junk'");
}

TEST_CASE("An unknown tag is kept raw, even with nothing after it", "[operlog]")
{
    auto result = parse_operlog("WORKCODE\nnewTag_2 some free text\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 2);
    CHECK(result.records[0].tag == "WORKCODE");
    CHECK(result.records[0].raw == "WORKCODE");
    CHECK(result.records[0].fields.empty());
    CHECK(result.records[1].tag == "newTag_2");
    CHECK(result.records[1].raw == "newTag_2 some free text");
    CHECK(result.records[1].fields == std::vector<key_value>{{"some free text", ""}});
}

TEST_CASE("Lines without a tag are rejected", "[operlog]")
{
    auto result = parse_operlog(" USER PIN=1\n"
                                "PIN=1\tName=x\n"
                                "1\t2025-03-14 08:00:00\t0\t1\n"
                                "\x01USER PIN=1\n"
                                "ÜSER PIN=1\n"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG x\n"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF x\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].tag == "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF");
    REQUIRE(result.rejected.size() == 6);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "no tag at the start of the line ' USER PIN=1'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[2].line_number == 3);
    CHECK(result.rejected[3].reason == "no tag at the start of the line '?USER PIN=1'");
    CHECK(result.rejected[4].line_number == 5);
    CHECK(result.rejected[5].line_number == 6);
}

TEST_CASE("Binary junk and a 1 MB line never crash the OPERLOG parser", "[operlog]")
{
    auto junk = parse_operlog("\x00\xff\t\x80\n\x00\n"s);
    CHECK(junk.records.empty());
    REQUIRE(junk.rejected.size() == 2);
    CHECK(junk.rejected[0].text == "\x00\xff\t\x80"s);
    CHECK(junk.rejected[1].line_number == 2);

    std::string photo = "BIOPHOTO PIN=1\tContent=" + std::string(1024 * 1024, 'A');
    auto big = parse_operlog(photo + "\n" + std::string(1024 * 1024, '\x01'));
    REQUIRE(big.records.size() == 1);
    CHECK(find_field(big.records[0], "Content")->size() == 1024 * 1024);
    REQUIRE(big.rejected.size() == 1);
    CHECK(big.rejected[0].line_number == 2);
    CHECK(big.rejected[0].reason ==
          "no tag at the start of the line '" + std::string(40, '?') + "...'");
}

TEST_CASE("Thousands of random OPERLOG bodies never crash and every non-blank line counts",
          "[operlog][fuzz]")
{
    std::mt19937 random{7};
    const std::string alphabet = "OPLGUSERF =\t\t\n\r0123456789-: ";
    for (int round = 0; round < 3000; ++round) {
        std::string body;
        auto length = std::uniform_int_distribution<int>{0, 300}(random);
        for (int i = 0; i < length; ++i) {
            if (round % 2 == 0) {
                body += static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random));
            } else {
                body += alphabet[std::uniform_int_distribution<std::size_t>{0, alphabet.size() -
                                                                                   1}(random)];
            }
        }
        if (round % 5 == 0) {
            body += "\nOPLOG 1\t0\t2025-03-14 08:00:00\t0\nUSER PIN=1\n";
        }
        auto result = parse_operlog(body);
        std::size_t non_blank = 0;
        std::string_view rest = body;
        while (!rest.empty()) {
            auto end = rest.find('\n');
            if (rest.substr(0, end).find_first_not_of(" \t\r") != std::string_view::npos) {
                ++non_blank;
            }
            rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
        }
        REQUIRE(result.records.size() + result.rejected.size() == non_blank);
    }
}
