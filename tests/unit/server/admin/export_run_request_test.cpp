// The body of POST /exports/{name}/run: one field, a real date, errors naming it.
#include "server/admin/exports_api.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using adms::server::parse_export_run;

TEST_CASE("An export run asks for one date, YYYY-MM-DD, and names the field when it is wrong",
          "[admin][exports]")
{
    auto ok = parse_export_run(R"({"date": "2026-11-30"})");
    REQUIRE(ok);
    CHECK(*ok.value == local_days{2026y / November / 30});

    auto missing = parse_export_run("{}");
    REQUIRE_FALSE(missing);
    CHECK(missing.error.describe() == "field 'date': required: the devices' wall-clock day to "
                                      "export, YYYY-MM-DD (e.g. 2026-11-30)");
    CHECK_FALSE(parse_export_run(R"({"date": null})"));
    for (const auto* bad : {R"({"date": "2026-02-29"})", R"({"date": "2026-11-30 00:00:00"})",
                            R"({"date": "30/11/2026"})", R"({"date": ""})"}) {
        INFO(bad);
        auto refused = parse_export_run(bad);
        REQUIRE_FALSE(refused);
        CHECK(refused.error.field == "date");
        CHECK_THAT(refused.error.message,
                   Catch::StartsWith("expected the devices' wall-clock day"));
    }
    auto wrong_type = parse_export_run(R"({"date": 20261130})");
    REQUIRE_FALSE(wrong_type);
    CHECK(wrong_type.error.field == "date");
    auto extra = parse_export_run(R"({"date": "2026-11-30", "force": true})");
    REQUIRE_FALSE(extra);
    CHECK(extra.error.field == "force");
    CHECK_FALSE(parse_export_run(""));
    CHECK_FALSE(parse_export_run("[]"));
}
