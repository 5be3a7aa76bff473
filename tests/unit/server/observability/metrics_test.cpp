#include "server/observability/metrics.hpp"

#include <catch2/catch.hpp>

using namespace adms::server;

TEST_CASE("Metrics render in the Prometheus text format with every family", "[metrics]")
{
    metrics m;
    m.request("/iclock/cdata", 200, std::chrono::milliseconds{3});
    m.request("/iclock/cdata", 200, std::chrono::milliseconds{4});
    m.request("/devices", 401, std::chrono::microseconds{200});
    m.punches(5, 2, 1);
    m.commands_queued(3);
    m.commands_sent(2);
    m.command_results(1, 1);
    m.time_sync(sync_outcome::sent);
    m.time_sync(sync_outcome::confirmed);
    m.time_sync(sync_outcome::timed_out);
    m.database_commit(std::chrono::milliseconds{2});
    auto text = m.render(4, 3);

    using Catch::Contains;
    CHECK_THAT(text, Contains("# TYPE admsd_http_requests_total counter"));
    CHECK_THAT(text,
               Contains(R"(admsd_http_requests_total{endpoint="/iclock/cdata",status="200"} 2)"));
    CHECK_THAT(text, Contains(R"(admsd_http_requests_total{endpoint="/devices",status="401"} 1)"));
    CHECK_THAT(text, Contains("# TYPE admsd_http_request_duration_seconds histogram"));
    CHECK_THAT(
        text, Contains(R"(admsd_http_request_duration_seconds_count{endpoint="/iclock/cdata"} 2)"));
    CHECK_THAT(text, Contains(R"(admsd_punches_total{outcome="stored"} 5)"));
    CHECK_THAT(text, Contains(R"(admsd_punches_total{outcome="duplicate"} 2)"));
    CHECK_THAT(text, Contains(R"(admsd_punches_total{outcome="rejected"} 1)"));
    CHECK_THAT(text, Contains(R"(admsd_commands_total{event="queued"} 3)"));
    CHECK_THAT(text, Contains(R"(admsd_commands_total{event="sent"} 2)"));
    CHECK_THAT(text, Contains(R"(admsd_commands_total{event="acknowledged"} 1)"));
    CHECK_THAT(text, Contains(R"(admsd_commands_total{event="failed"} 1)"));
    CHECK_THAT(text, Contains(R"(admsd_time_syncs_total{outcome="confirmed"} 1)"));
    CHECK_THAT(text, Contains(R"(admsd_time_syncs_total{outcome="timed_out"} 1)"));
    CHECK_THAT(text, Contains(R"(admsd_time_syncs_total{outcome="refused"} 0)"));
    CHECK_THAT(text, Contains("admsd_database_commit_duration_seconds_count 1"));
    CHECK_THAT(text, Contains(R"(admsd_devices{state="known"} 4)"));
    CHECK_THAT(text, Contains(R"(admsd_devices{state="online"} 3)"));
}

TEST_CASE("NTP datagrams are counted as answered or dropped", "[metrics]")
{
    metrics m;
    CHECK_THAT(m.render(0, 0), Catch::Contains(R"(admsd_ntp_requests_total{result="answered"} 0)"));
    m.ntp_request(true);
    m.ntp_request(true);
    m.ntp_request(false);
    auto text = m.render(0, 0);
    CHECK_THAT(text, Catch::Contains("# TYPE admsd_ntp_requests_total counter"));
    CHECK_THAT(text, Catch::Contains(R"(admsd_ntp_requests_total{result="answered"} 2)"));
    CHECK_THAT(text, Catch::Contains(R"(admsd_ntp_requests_total{result="dropped"} 1)"));
}
