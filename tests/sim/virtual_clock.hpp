#pragma once

#include <chrono>
#include <cmath>

// A simulated terminal's clock. Pure: the true time is always a parameter.
namespace adms::sim {

// Nanosecond wall-clock times of the zone (no offset attached), and UTC instants.
using local_ns = std::chrono::local_time<std::chrono::nanoseconds>;
using sys_ns = std::chrono::sys_time<std::chrono::nanoseconds>;

// A device clock: the true local wall time, plus an offset, plus a rate error that accumulates
// from the last time the clock was set:
//   read(t) = true_local(t) + offset + drift_ppm * 1e-6 * (t - anchor).
// Setting it (a DateTime command) makes read(t) equal the value at that instant and keeps the
// drift. Thread safety: a plain value; one device (one coroutine) owns it.
class virtual_clock {
  public:
    virtual_clock() = default;

    // A clock `offset` off the true local time at `start`, running `drift_ppm` fast (negative:
    // slow).
    virtual_clock(std::chrono::nanoseconds offset, double drift_ppm, sys_ns start)
        : offset_{offset}, drift_ppm_{drift_ppm}, anchor_{start}
    {
    }

    // The device's wall-clock time at the true instant `now`, whose true local time in the zone
    // is `true_local`.
    local_ns read(sys_ns now, local_ns true_local) const { return true_local + error(now); }

    // How far the clock is from the true local time at `now` (positive: the clock is fast).
    std::chrono::nanoseconds error(sys_ns now) const
    {
        auto elapsed = static_cast<double>((now - anchor_).count());
        return offset_ + std::chrono::nanoseconds{
                             static_cast<std::int64_t>(std::llround(elapsed * drift_ppm_ * 1e-6))};
    }

    // Sets the clock to `value` at the true instant `now` (true local time `true_local`) and
    // returns its new error: value - true_local, the time-sync error at that instant.
    std::chrono::nanoseconds set(local_ns value, sys_ns now, local_ns true_local)
    {
        offset_ = value - true_local;
        anchor_ = now;
        return offset_;
    }

  private:
    std::chrono::nanoseconds offset_{0};
    double drift_ppm_ = 0;
    sys_ns anchor_{};
};

} // namespace adms::sim
