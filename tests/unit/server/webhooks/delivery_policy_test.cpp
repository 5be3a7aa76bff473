#include "server/webhooks/delivery_policy.hpp"
#include "server/webhooks/endpoint.hpp"

#include <catch2/catch.hpp>

using namespace adms::server;
using namespace std::chrono_literals;

namespace {

send_result answered(int status)
{
    send_result r;
    r.status = status;
    return r;
}

send_result failed(send_outcome outcome)
{
    send_result r;
    r.outcome = outcome;
    r.error = "x";
    return r;
}

} // namespace

TEST_CASE("Only a 2xx is delivered, 410 is gone, other 4xx reject the event, the rest make the "
          "endpoint unavailable",
          "[webhooks][policy]")
{
    for (int status : {200, 201, 202, 204, 299}) {
        CHECK(classify(answered(status)) == verdict::delivered);
    }
    CHECK(classify(answered(410)) == verdict::gone);
    for (int status : {400, 401, 403, 404, 409, 413, 422, 499}) {
        INFO(status);
        CHECK(classify(answered(status)) == verdict::rejected);
    }
    for (int status : {100, 301, 302, 307, 308, 408, 429, 500, 502, 503, 504, 599}) {
        INFO(status);
        CHECK(classify(answered(status)) == verdict::unavailable);
    }
    for (auto outcome : {send_outcome::timeout, send_outcome::connect_error,
                         send_outcome::tls_error, send_outcome::blocked}) {
        CHECK(classify(failed(outcome)) == verdict::unavailable);
    }
    CHECK(result_label(answered(204)) == "success");
    CHECK(result_label(answered(302)) == "http_3xx");
    CHECK(result_label(answered(422)) == "http_4xx");
    CHECK(result_label(answered(503)) == "http_5xx");
    CHECK(result_label(failed(send_outcome::tls_error)) == "tls_error");
}

TEST_CASE("Probe waits follow the schedule, the last repeating, jittered by +-20 %, never "
          "sooner than Retry-After",
          "[webhooks][policy]")
{
    std::vector<std::chrono::seconds> schedule{5s, 30s, 60s};
    CHECK(retry_wait(schedule, 0, 0.5) == 5000ms);
    CHECK(retry_wait(schedule, 0, 0.0) == 4000ms);
    CHECK(retry_wait(schedule, 0, 1.0) == 6000ms);
    CHECK(retry_wait(schedule, 1, 0.5) == 30000ms);
    CHECK(retry_wait(schedule, 2, 0.5) == 60000ms);
    CHECK(retry_wait(schedule, 50, 0.5) == 60000ms);
    CHECK(retry_wait(schedule, 0, 0.5, 120s) == 120000ms);
    CHECK(retry_wait(schedule, 2, 0.5, 3s) == 60000ms);
    CHECK(retry_wait(schedule, 0, 0.5, std::chrono::seconds{7 * 86400}) == 86400000ms);
}

TEST_CASE("A rejected event waits each step of the reject schedule, then is parked",
          "[webhooks][policy]")
{
    std::vector<std::chrono::seconds> schedule{5s, 300s};
    CHECK(reject_wait(schedule, 1) == 5s);
    CHECK(reject_wait(schedule, 2) == 300s);
    CHECK_FALSE(reject_wait(schedule, 3));
    CHECK_FALSE(reject_wait({}, 1));
}

TEST_CASE("An endpoint wants the types and devices it names, and webhook.test only when sent",
          "[webhooks][endpoint]")
{
    webhook_endpoint e;
    e.name = "hr";
    CHECK(wants(e, "punch.created", "SN1", ""));
    CHECK_FALSE(wants(e, "webhook.test", "", ""));
    e.event_types = {"punch.created"};
    CHECK_FALSE(wants(e, "device.offline", "SN1", ""));
    e.event_types = {"*"};
    CHECK(wants(e, "device.offline", "SN1", ""));
    e.devices = {"front-door"};
    CHECK_FALSE(wants(e, "punch.created", "SN1", ""));
    CHECK(wants(e, "punch.created", "SN1", "front-door"));
    CHECK(wants(e, "export.completed", "", "")); // about no device
    CHECK(known_event_type("device.clock_drift.resolved"));
    CHECK_FALSE(known_event_type("punch"));
}

TEST_CASE("An endpoint survives its stored row, and secrets in grace sign until they expire",
          "[webhooks][endpoint]")
{
    webhook_endpoint e;
    e.name = "hr";
    e.url = "https://hr.example.com/hook";
    e.description = "payroll";
    e.event_types = {"punch.created"};
    e.devices = {"A1"};
    e.headers = {{"Authorization", "token k:s"}};
    e.timeout = 7s;
    e.ca_file = "/etc/ca.pem";
    e.secrets = {{"whsec_new", std::nullopt}, {"whsec_old", instant{1000ms}}};
    e.enabled = false;
    e.disabled_reason = "410";
    e.source = "config";
    e.created_at = instant{5000ms};
    auto back = endpoint_of(row_of(e));
    REQUIRE(back);
    CHECK(*back == e);
    CHECK(signing_keys(e, instant{999ms}) == std::vector<std::string>{"whsec_new", "whsec_old"});
    CHECK(signing_keys(e, instant{1000ms}) == std::vector<std::string>{"whsec_new"});
    auto broken = row_of(e);
    broken.definition = "{not json";
    CHECK_FALSE(endpoint_of(broken));
}
