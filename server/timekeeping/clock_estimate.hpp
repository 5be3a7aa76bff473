#pragma once

#include "server/storage/result.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The server's best estimate of a device's clock, from the evidence a push server has: its last
// confirmed time sync and the times on realtime punches. Pure: "now" is a parameter; no I/O, no
// clock reads, no exceptions.
namespace adms::server {

// One realtime punch as clock evidence: the device's wall-clock time placed on UTC in the
// device's zone (whole seconds, truncated by the device), and when the server received it.
struct punch_sample {
    std::chrono::sys_seconds device_utc;
    instant received_at;
    friend bool operator==(const punch_sample&, const punch_sample&) = default;
};

// What the server knows about a device's clock.
struct clock_evidence {
    // When the last `SET OPTIONS DateTime=` went out. When it is later than sync_confirmed_at a
    // newer sync is in flight and the confirmed one was sent at some unknown earlier moment.
    std::optional<instant> sync_sent_at;
    std::optional<instant> sync_confirmed_at; // when the device reported Return=0 for it
    std::vector<punch_sample> punches;        // any order
};

// How much to trust the evidence.
struct clock_estimate_params {
    double drift_ppm = 50; // RTC drift bound (cheap crystals: 20-50 ppm, 50 ppm = 4.32 s/day)
    std::size_t max_samples = 16;      // use the latest N punches by received_at
    std::chrono::hours window{24 * 7}; // ignore punches received longer ago than this
    bool explain = true; // write the note (the drift watch, running per upload, does not)
};

// Which evidence an estimate rests on.
enum class clock_source { sync, punches, unknown };

// "sync", "punches", "unknown".
std::string_view to_string(clock_source source);

// The estimate: the device's clock is `offset` ± `uncertainty` ahead of the server's at `now`.
struct clock_estimate {
    clock_source source = clock_source::unknown;
    std::optional<std::chrono::milliseconds> offset; // device clock - server clock; empty: unknown
    std::chrono::milliseconds uncertainty{0};        // ± around offset
    std::optional<instant> measured_at; // when the evidence used was taken (sync sent, punch)
    std::size_t samples_used = 0;       // punches considered (checked against a sync, or used)
    std::string note;                   // one sentence for humans
};

// The best estimate of the device's clock at `now`. Ranking: a confirmed sync (offset 0, ±1 s
// plus drift since it was sent), unless punches received after its confirmation show the clock has
// moved by more than both uncertainties; then, or without a sync, the least-delayed recent punch
// (+0.5 s for the device's truncation, ±1 s plus drift since it arrived); else unknown. Evidence
// dated after `now` is ignored (the server's clock was stepped back).
clock_estimate estimate_device_clock(const clock_evidence& evidence, instant now,
                                     const clock_estimate_params& params = {});

} // namespace adms::server
