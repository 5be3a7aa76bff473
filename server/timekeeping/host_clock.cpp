#include "server/timekeeping/host_clock.hpp"

#include <cerrno>
#include <cstring>
#include <sys/timex.h>
#include <time.h>

namespace adms::server {
namespace {

// The kernel adds this to maxerror every second (MAXFREQ: 500 ppm).
constexpr std::int64_t max_error_growth_per_second_us = 500;

} // namespace

host_clock_status read_host_clock()
{
    host_clock_status result;
    timex tx{};
    tx.modes = 0; // read only
    int state = ::ntp_adjtime(&tx);
    if (state < 0) {
        result.error = std::strerror(errno);
        return result;
    }
    result.state = state;
    result.status = tx.status;
    result.synchronised = state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
    result.insert_leap = (tx.status & STA_INS) != 0;
    result.delete_leap = (tx.status & STA_DEL) != 0;
    result.max_error = std::chrono::microseconds{tx.maxerror};
    result.estimated_error = std::chrono::microseconds{tx.esterror};
    return result;
}

std::chrono::nanoseconds host_clock_resolution()
{
    timespec resolution{};
    if (::clock_getres(CLOCK_REALTIME, &resolution) != 0) {
        return std::chrono::microseconds{1}; // never happens on Linux; a modest claim if it does
    }
    return std::chrono::seconds{resolution.tv_sec} + std::chrono::nanoseconds{resolution.tv_nsec};
}

void host_clock_reference::observe(const host_clock_status& status, protocol::ntp_time now)
{
    if (!status.error.empty()) {
        return;
    }
    std::lock_guard lock{mutex_};
    if (last_max_error_ && status.max_error < *last_max_error_) {
        reference_ = now;
    } else if (!reference_ && status.synchronised) {
        auto age = std::chrono::seconds{status.max_error.count() / max_error_growth_per_second_us};
        reference_ = now - age;
    }
    last_max_error_ = status.max_error;
}

std::optional<protocol::ntp_time> host_clock_reference::reference() const
{
    std::lock_guard lock{mutex_};
    return reference_;
}

ntp_claim claim_for(const host_clock_status& status, std::optional<protocol::ntp_time> reference,
                    ntp_strata strata, protocol::ntp_time now)
{
    ntp_claim claim;
    if (status.synchronised) {
        claim.leap = status.insert_leap   ? protocol::ntp_leap::insert_second
                     : status.delete_leap ? protocol::ntp_leap::delete_second
                                          : protocol::ntp_leap::none;
        claim.stratum = static_cast<std::uint8_t>(strata.synchronised);
        claim.reference_id = host_reference_id;
        claim.root_dispersion = status.max_error;
        claim.reference = reference;
        return claim;
    }
    if (strata.local != 0) {
        // The site's reference by decree: its error against UTC is unknown, not large.
        claim.leap = protocol::ntp_leap::none;
        claim.stratum = static_cast<std::uint8_t>(strata.local);
        claim.reference_id = local_reference_id;
        claim.reference = now;
        return claim;
    }
    claim.root_dispersion = status.max_error;
    return claim;
}

} // namespace adms::server
