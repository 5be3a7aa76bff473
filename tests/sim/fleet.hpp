#pragma once

#include "tests/sim/sim_options.hpp"
#include "tests/sim/sim_report.hpp"
#include "tz/zone.hpp"

#include <optional>
#include <string>

// The fleet of virtual terminals: the only part of admsd-sim with sockets, timers and threads
// (Asio stays inside fleet.cpp).
namespace adms::sim {

// The report of a run, or why it could not run (the target does not resolve, ...).
struct fleet_outcome {
    std::optional<report> result; // cpu_user_s and cpu_system_s are left for the caller
    std::string error;
};

// Runs `options.devices` terminals against the target for the activity phase, drains, and
// returns what was measured. SIGINT or SIGTERM ends the activity early (a second one ends the
// drain). Blocks until the run is over.
fleet_outcome run_fleet(const sim_options& options, const tz::zone& zone);

} // namespace adms::sim
