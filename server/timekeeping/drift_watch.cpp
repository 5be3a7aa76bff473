#include "server/timekeeping/drift_watch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace adms::server {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// A punch's time is truncated to the second: estimates add half a second (clock_estimate).
constexpr milliseconds truncation_midpoint = 500ms;

// The most a clock drifting `ppm` can move in `elapsed` (rounded up; none for bad input).
milliseconds drift(double ppm, milliseconds elapsed)
{
    if (!(ppm > 0) || elapsed <= 0ms) {
        return 0ms;
    }
    auto ms = std::ceil(static_cast<double>(elapsed.count()) * std::min(ppm, 1e6) / 1e6);
    return milliseconds{static_cast<std::int64_t>(ms)};
}

// Another upload, received at least corroboration_gap away from the estimate's punch, whose
// sample agrees with the estimate's within `agreement` plus the drift between them.
bool corroborated(const clock_estimate& estimate, std::span<const punch_sample> punches,
                  instant now, const drift_params& params)
{
    if (!estimate.offset || !estimate.measured_at) {
        return false;
    }
    auto best_sample = *estimate.offset - truncation_midpoint;
    for (const auto& punch : punches) {
        if (punch.received_at > now || now - punch.received_at > params.estimate.window) {
            continue;
        }
        auto apart = std::chrono::abs(milliseconds{punch.received_at - *estimate.measured_at});
        if (apart < params.corroboration_gap) {
            continue;
        }
        auto sample = milliseconds{punch.device_utc - punch.received_at};
        if (std::chrono::abs(sample - best_sample) <=
            params.agreement + drift(params.estimate.drift_ppm, apart)) {
            return true;
        }
    }
    return false;
}

} // namespace

bool beyond_threshold(const clock_estimate& estimate, std::span<const punch_sample> punches,
                      instant now, const drift_params& params)
{
    if (!estimate.offset || std::chrono::abs(*estimate.offset) <= params.threshold) {
        return false;
    }
    if (estimate.source != clock_source::punches || *estimate.offset > 0ms) {
        return true;
    }
    return corroborated(estimate, punches, now, params);
}

void drift_tracker::note_sync(std::optional<instant> sent, instant confirmed)
{
    evidence_.sync_sent_at = sent;
    evidence_.sync_confirmed_at = confirmed;
}

void drift_tracker::note_punches(std::span<const punch_sample> punches, const drift_params& params)
{
    auto& kept = evidence_.punches;
    kept.insert(kept.end(), punches.begin(), punches.end());
    auto limit = std::max<std::size_t>(params.estimate.max_samples, 1);
    if (kept.size() > limit) {
        // The latest by receive time; among one upload's punches, the latest device times (the
        // least delayed).
        std::partial_sort(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(limit),
                          kept.end(), [](const auto& a, const auto& b) {
                              return a.received_at != b.received_at ? a.received_at > b.received_at
                                                                    : a.device_utc > b.device_utc;
                          });
        kept.resize(limit);
    }
}

drift_update drift_tracker::evaluate(instant now, const drift_params& params)
{
    drift_update update;
    update.estimate = estimate_device_clock(evidence_, now, params.estimate);
    const auto& estimate = update.estimate;
    if (!estimate.offset || !estimate.measured_at || estimate.source == clock_source::unknown) {
        return update;
    }
    bool within = std::chrono::abs(*estimate.offset) <= params.threshold;
    bool beyond = !within && beyond_threshold(estimate, evidence_.punches, now, params);
    if (beyond && !alerting_) {
        alerting_ = true;
        update.alert = drift_alert::raised;
    } else if (within && alerting_) {
        alerting_ = false;
        update.alert = drift_alert::cleared;
    }
    if (!within && !beyond) {
        return update; // a slow reading not corroborated yet: maybe a backlog, not history
    }

    drift_point point{*estimate.measured_at, *estimate.offset, estimate.uncertainty,
                      estimate.source};
    bool record = false;
    if (!last_point_) {
        record = true;
    } else if (point.measured_at == last_point_->measured_at &&
               point.source == last_point_->source) {
        record = false; // the same evidence as last time
    } else {
        record = update.alert != drift_alert::none || point.source != last_point_->source ||
                 point.source == clock_source::sync || // every confirmed sync is an event
                 std::chrono::abs(point.offset - last_point_->offset) >= params.record_change ||
                 point.measured_at - last_point_->measured_at >= params.record_interval;
    }
    if (record) {
        last_point_ = point;
        update.record = point;
    }
    return update;
}

} // namespace adms::server
