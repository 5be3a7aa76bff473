#include "server/timekeeping/clock_estimate.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace adms::server {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// A fresh measurement's ±: the sync's DateTime is rounded to the second and reaches the device
// after some transit; a punch's time is truncated to the second and uploaded after some delay.
constexpr milliseconds fresh_uncertainty = 1000ms;

// A punch time is truncated by 0..1 s, so the midpoint is half a second above the sample.
constexpr milliseconds truncation_midpoint = 500ms;

// A drift bound the arithmetic can take: negative or NaN means none; more than 100 % is capped
// (the product with any elapsed time then still fits in milliseconds).
double usable_ppm(double ppm)
{
    if (!(ppm > 0)) {
        return 0;
    }
    return std::min(ppm, 1e6);
}

// The most a clock drifting `ppm` can move in `elapsed`, rounded up to the millisecond.
milliseconds drift(double ppm, milliseconds elapsed)
{
    if (elapsed <= 0ms) {
        return 0ms;
    }
    auto ms = std::ceil(static_cast<double>(elapsed.count()) * ppm / 1e6);
    return milliseconds{static_cast<std::int64_t>(ms)};
}

// device_utc - received_at: the true offset minus upload delay minus truncation.
milliseconds sample_of(const punch_sample& punch)
{
    return milliseconds{punch.device_utc - punch.received_at};
}

std::string format_time(instant t)
{
    return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", std::chrono::floor<std::chrono::seconds>(t));
}

std::string format_seconds(milliseconds d)
{
    return fmt::format("{:.1f} s", static_cast<double>(d.count()) / 1000.0);
}

std::string format_signed_seconds(milliseconds d)
{
    return fmt::format("{:+.1f} s", static_cast<double>(d.count()) / 1000.0);
}

std::string format_window(std::chrono::hours window)
{
    if (window.count() % 24 == 0) {
        return fmt::format("{} days", window.count() / 24);
    }
    return fmt::format("{} h", window.count());
}

// The moment a confirmed sync set the clock; nullopt when there is no usable confirmed sync.
std::optional<instant> sync_moment(const clock_evidence& evidence, instant now)
{
    if (!evidence.sync_confirmed_at || *evidence.sync_confirmed_at > now) {
        return std::nullopt;
    }
    if (evidence.sync_sent_at && *evidence.sync_sent_at <= *evidence.sync_confirmed_at) {
        return evidence.sync_sent_at;
    }
    // No send time, or a newer sync is in flight and overwrote it: the confirmed one was sent
    // before it was confirmed, at most a poll interval earlier (seconds; a few ms of drift).
    return evidence.sync_confirmed_at;
}

// The punches to use, latest first: received in [now - window, now], and when a sync exists
// received after its confirmation and stamped no earlier than the synced clock could read.
std::vector<punch_sample> usable_punches(const clock_evidence& evidence, instant now,
                                         const clock_estimate_params& params, double ppm,
                                         std::optional<instant> sync_at)
{
    std::vector<punch_sample> kept;
    for (const auto& punch : evidence.punches) {
        if (punch.received_at > now || now - punch.received_at > params.window) {
            continue;
        }
        if (sync_at) {
            // Received before the device confirmed the sync: it may have been stamped by the
            // old clock (a poll reply is claimed, held to the second and applied before the
            // confirmation comes back).
            if (punch.received_at < std::max(*sync_at, *evidence.sync_confirmed_at)) {
                continue;
            }
            // Why: a device back online uploads its backlog after the sync; those punches were
            // stamped by the old clock and their samples look like a huge negative step. Any
            // punch made after the sync reads at least the sync time minus rounding, drift and
            // truncation.
            auto earliest =
                *sync_at - fresh_uncertainty - 1s - drift(ppm, punch.received_at - *sync_at);
            if (punch.device_utc < earliest) {
                continue;
            }
        }
        kept.push_back(punch);
    }
    std::sort(kept.begin(), kept.end(),
              [](const auto& a, const auto& b) { return a.received_at > b.received_at; });
    if (kept.size() > params.max_samples) {
        kept.resize(params.max_samples);
    }
    return kept;
}

// The punch giving the highest lower bound on today's offset: every sample is a lower bound
// when it was taken (delays are >= 0), loosened by the drift since. With no drift this is the
// largest sample (NTP's minimum-delay filter); an older sample wins only when it beats a newer
// one by more than the clock could have drifted in between. Ties go to the newest. Non-empty
// input, latest first.
const punch_sample& least_delayed(const std::vector<punch_sample>& punches, instant now, double ppm)
{
    const punch_sample* best = &punches.front();
    auto best_bound = sample_of(*best) - drift(ppm, now - best->received_at);
    for (const auto& punch : punches) {
        auto bound = sample_of(punch) - drift(ppm, now - punch.received_at);
        if (bound > best_bound) {
            best = &punch;
            best_bound = bound;
        }
    }
    return *best;
}

std::string punch_count(std::size_t n)
{
    return n == 1 ? std::string{"1 punch"} : fmt::format("{} punches", n);
}

} // namespace

std::string_view to_string(clock_source source)
{
    switch (source) {
    case clock_source::sync:
        return "sync";
    case clock_source::punches:
        return "punches";
    case clock_source::unknown:
        return "unknown";
    }
    return "unknown";
}

clock_estimate estimate_device_clock(const clock_evidence& evidence, instant now,
                                     const clock_estimate_params& params)
{
    auto ppm = usable_ppm(params.drift_ppm);
    auto sync_at = sync_moment(evidence, now);
    auto punches = usable_punches(evidence, now, params, ppm, sync_at);

    clock_estimate result;
    result.samples_used = punches.size();
    const punch_sample* best = punches.empty() ? nullptr : &least_delayed(punches, now, ppm);
    auto punch_offset = best ? sample_of(*best) + truncation_midpoint : 0ms;
    auto from_punches = [&] {
        result.source = clock_source::punches;
        result.offset = punch_offset;
        result.uncertainty = fresh_uncertainty + drift(ppm, now - best->received_at);
        result.measured_at = best->received_at;
    };
    auto punch_sentence = [&] {
        auto from = punches.size() == 1
                        ? std::string{"from 1 punch"}
                        : fmt::format("from the least-delayed of {} punches", punches.size());
        return fmt::format("estimated {} (received {}; upload delay can only make the true "
                           "offset larger than this estimate)",
                           from, format_time(best->received_at));
    };

    if (sync_at) {
        if (best) {
            // Compared when the punch was taken: the sync's bound had grown by the drift until
            // then, the punch's is fresh.
            auto tolerance =
                fresh_uncertainty + drift(ppm, best->received_at - *sync_at) + fresh_uncertainty;
            if (std::chrono::abs(punch_offset) > tolerance) {
                from_punches();
                if (params.explain) {
                    result.note = fmt::format(
                        "Punches since the confirmed sync at {} show the clock {} off: it was "
                        "changed from the keypad or drifted since; {}.",
                        format_time(*sync_at), format_signed_seconds(punch_offset),
                        punch_sentence());
                }
                return result;
            }
        }
        result.source = clock_source::sync;
        result.offset = 0ms;
        result.uncertainty = fresh_uncertainty + drift(ppm, now - *sync_at);
        result.measured_at = sync_at;
        if (params.explain) {
            result.note = fmt::format(
                "Set by the server at {} (confirmed); since then it can have drifted up to {} at "
                "{} ppm{}.",
                format_time(*sync_at), format_seconds(result.uncertainty - fresh_uncertainty), ppm,
                punches.empty() ? std::string{}
                                : fmt::format("; {} received since {}", punch_count(punches.size()),
                                              punches.size() == 1 ? "agrees" : "agree"));
        }
        return result;
    }

    if (best) {
        from_punches();
        if (params.explain) {
            result.note = fmt::format("No confirmed time sync: {}.", punch_sentence());
        }
        return result;
    }

    if (params.explain) {
        result.note = fmt::format("No confirmed time sync and no punch received in the last {}: "
                                  "nothing to estimate the clock from.",
                                  format_window(params.window));
    }
    return result;
}

} // namespace adms::server
