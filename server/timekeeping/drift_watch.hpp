#pragma once

#include "server/storage/result.hpp"
#include "server/timekeeping/clock_estimate.hpp"

#include <chrono>
#include <optional>
#include <span>

// The drift watch: per device, the clock evidence as it arrives (confirmed syncs, realtime
// punches), the estimate after each piece, which estimates go into the device's offset history,
// and when the clock is off by more than a threshold. Pure: "now" is a parameter; no I/O, no
// clock reads, no exceptions.
namespace adms::server {

// How the watch judges and records.
struct drift_params {
    std::chrono::milliseconds threshold{60'000}; // alert when the clock is off by more than this
    // A new history point when the offset moved by at least this since the last point…
    std::chrono::milliseconds record_change{2'000};
    // …or, when it did not, once this long after the last point (a stable clock is still shown).
    std::chrono::hours record_interval{24};
    // A slow reading from punches can be upload delay (a backlog): it counts only when a second
    // upload received at least this much apart agrees with it within agreement (+ drift).
    std::chrono::seconds corroboration_gap{60};
    std::chrono::milliseconds agreement{2'000};
    clock_estimate_params estimate{.explain = false};
};

// One estimate as the history keeps it.
struct drift_point {
    instant measured_at{};              // when the evidence was taken (sync sent, punch received)
    std::chrono::milliseconds offset{}; // device clock - server clock
    std::chrono::milliseconds uncertainty{};
    clock_source source = clock_source::unknown; // sync or punches, never unknown
    friend bool operator==(const drift_point&, const drift_point&) = default;
};

// What changed in the alert state.
enum class drift_alert { none, raised, cleared };

// What one evaluation found.
struct drift_update {
    clock_estimate estimate;
    std::optional<drift_point> record; // append to the history
    drift_alert alert = drift_alert::none;
};

// One device's watch. A value type: the owner guards it (the device registry's lock).
// Thread safety: none of its own.
class drift_tracker {
  public:
    // A time sync the device confirmed: `sent` when it went out (if known), `confirmed` when the
    // device reported success.
    void note_sync(std::optional<instant> sent, instant confirmed);

    // Punches as clock evidence (device time on UTC, received time). Keeps the latest
    // `params.estimate.max_samples` by receive time.
    void note_punches(std::span<const punch_sample> punches, const drift_params& params);

    // The estimate at `now`, whether it goes into the history, and whether the alert is raised
    // or cleared by it (a raised alert stays raised until an estimate within the threshold).
    drift_update evaluate(instant now, const drift_params& params);

    // Whether the device's clock is currently reported as off.
    bool alerting() const { return alerting_; }

    // The last point recorded (or to be recorded) in the history.
    const std::optional<drift_point>& last_point() const { return last_point_; }

  private:
    clock_evidence evidence_;
    std::optional<drift_point> last_point_;
    bool alerting_ = false;
};

// Whether `estimate` puts the clock off by more than the threshold, beyond doubt: a fast
// reading from punches is a lower bound (upload delay only hides offset) and counts at once; a
// slow one needs a second upload, at least corroboration_gap apart, agreeing with it.
bool beyond_threshold(const clock_estimate& estimate, std::span<const punch_sample> punches,
                      instant now, const drift_params& params);

} // namespace adms::server
