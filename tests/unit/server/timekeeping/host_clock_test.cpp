#include "server/timekeeping/host_clock.hpp"

#include <catch2/catch.hpp>

#include <sys/timex.h>

using namespace std::chrono;
using namespace adms::server;
using adms::protocol::ntp_leap;
using adms::protocol::ntp_time;

namespace {

const ntp_time noon = ntp_time{sys_days{2026y / June / 30}} + 12h;

host_clock_status synced(microseconds max_error)
{
    host_clock_status s;
    s.synchronised = true;
    s.max_error = max_error;
    s.estimated_error = max_error / 4;
    return s;
}

} // namespace

TEST_CASE("The kernel's clock state reads without privilege and agrees with itself", "[ntp]")
{
    auto status = read_host_clock();
    REQUIRE(status.error.empty());
    CHECK(status.state >= TIME_OK);
    CHECK(status.state <= TIME_ERROR);
    CHECK(status.synchronised == (status.state != TIME_ERROR && (status.status & STA_UNSYNC) == 0));
    CHECK(status.max_error >= 0us);
    CHECK(status.max_error <= 16s);
    CHECK(host_clock_resolution() > 0ns);
    CHECK(host_clock_resolution() <= 10ms);
}

TEST_CASE("A synchronised host clock is claimed with the kernel's leap flags and maxerror", "[ntp]")
{
    auto status = synced(25ms);
    auto claim = claim_for(status, noon - 64s, {4, 0}, noon);
    CHECK(claim.leap == ntp_leap::none);
    CHECK(claim.stratum == 4);
    CHECK(claim.reference_id == host_reference_id);
    CHECK(claim.root_dispersion == 25ms);
    CHECK(claim.reference == noon - 64s);

    status.insert_leap = true;
    CHECK(claim_for(status, noon, {3, 0}, noon).leap == ntp_leap::insert_second);
    CHECK(claim_for(status, noon, {3, 0}, noon).stratum == 3);
    status.insert_leap = false;
    status.delete_leap = true;
    CHECK(claim_for(status, noon, {3, 0}, noon).leap == ntp_leap::delete_second);
    // The local stratum changes nothing while the kernel says synchronised.
    CHECK(claim_for(status, noon, {6, 10}, noon).stratum == 6);
    CHECK(claim_for(status, noon, {6, 10}, noon).reference_id == host_reference_id);
}

TEST_CASE("An unsynchronised host clock is alarm and stratum 16 unless a local stratum is set",
          "[ntp]")
{
    host_clock_status status; // what this kernel says without an NTP daemon: TIME_ERROR
    status.state = TIME_ERROR;
    status.status = STA_UNSYNC;
    auto claim = claim_for(status, std::nullopt, {4, 0}, noon);
    CHECK(claim.leap == ntp_leap::alarm);
    CHECK(claim.stratum == 16);
    CHECK(claim.reference_id == std::array<std::uint8_t, 4>{});
    CHECK_FALSE(claim.reference);

    // Even a leap flag left over is not passed on: the alarm says it all.
    status.insert_leap = true;
    CHECK(claim_for(status, noon, {4, 0}, noon).leap == ntp_leap::alarm);

    auto local = claim_for(status, std::nullopt, {4, 10}, noon);
    CHECK(local.leap == ntp_leap::none);
    CHECK(local.stratum == 10);
    CHECK(local.reference_id == local_reference_id);
    CHECK(local.reference == noon);
    CHECK(local.root_dispersion == 0ns);
}

TEST_CASE("The reference time is the last drop of maxerror, or the oldest the evidence allows",
          "[ntp]")
{
    host_clock_reference reference;
    // Unsynchronised: nothing to say yet.
    host_clock_status unsynced;
    reference.observe(unsynced, noon);
    CHECK_FALSE(reference.reference());

    // First seen synchronised with maxerror 1 s: at 500 µs/s the daemon set it 2000 s ago at the
    // earliest (16 s dropped to 1 s: that is a drop, the update happened now).
    host_clock_reference fresh;
    fresh.observe(synced(1s), noon);
    CHECK(fresh.reference() == noon - 2000s);
    // It grows without an update: the reference stays.
    fresh.observe(synced(1s + 500us * 30), noon + 30s);
    CHECK(fresh.reference() == noon - 2000s);
    // The daemon sets it lower: an update, seen now.
    fresh.observe(synced(20ms), noon + 40s);
    CHECK(fresh.reference() == noon + 40s);
    fresh.observe(synced(20ms + 500us * 16), noon + 56s);
    CHECK(fresh.reference() == noon + 40s);

    // From unsynchronised (maxerror 16 s) to synchronised: the drop is the update.
    reference.observe(synced(30ms), noon + 100s);
    CHECK(reference.reference() == noon + 100s);

    // A failed read changes nothing.
    host_clock_status failed;
    failed.error = "Operation not permitted";
    failed.max_error = 0us;
    reference.observe(failed, noon + 200s);
    CHECK(reference.reference() == noon + 100s);
}
