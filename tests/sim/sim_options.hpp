#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The command line of admsd-sim (tests/sim/README.md lists every flag). Pure: no I/O.
namespace adms::sim {

// What the command line asks for. Durations are in seconds (decimals allowed).
struct sim_options {
    std::string target_host;        // --target HOST:PORT, host part (brackets removed for IPv6)
    std::uint16_t target_port = 0;  // --target HOST:PORT, port part
    std::string target;             // --target as given (the Host header)
    std::size_t devices = 10;       // --devices
    std::string sn_prefix = "SIM";  // --sn-prefix: SNs are <prefix>000001, <prefix>000002, ...
    double duration_s = 30;         // --duration: seconds of activity
    double drain_s = 15;            // --drain: longest wait for unacknowledged punches
    double delay_s = 10;            // --delay: seconds between polls
    bool delay_from_server = false; // --delay server: use the handshake's Delay instead
    double ramp_s = 0;              // --ramp: handshakes spread over this long
    double warmup_s = 0;            // --warmup: latencies of requests started before are left out
    bool keep_alive = false;        // --keep-alive: one connection per device, reused
    bool stub_server = false;    // --stub-server: any 200 handshake reply counts (nginx's fixed OK)
    double punch_interval_s = 0; // --punch-interval: mean seconds between punches, 0 = none
    std::uint64_t backlog = 0;   // --backlog: punches per device pending at start
    double clock_offset_s = 0;   // --clock-offset: initial clock error within [-S, +S]
    double drift_ppm = 0;        // --drift-ppm: clock rate error within [-D, +D] ppm
    std::string zone = "UTC";    // --zone: IANA zone of the device clocks
    std::size_t max_connections = 4096; // --max-connections
    unsigned source_addresses = 1;      // --source-addresses: 127.0.0.1 .. 127.0.0.N
    std::uint64_t seed = 1;             // --seed
    std::string json_path;              // --json FILE; empty: no JSON file
    bool quiet = false;                 // --quiet: only the report
    bool fast_retry = true;             // --fast-retry / --no-fast-retry
    double timeout_s = 10;              // --timeout: deadline of one request, connect included
    unsigned threads = 1; // --threads: io_context threads (devices split between them)
};

// The outcome of reading the command line: options, a request for help, or an error message.
struct options_parse {
    std::optional<sim_options> options;
    bool help = false;
    std::string error; // set when neither options nor help
};

// Reads the arguments after the program name. Never throws; every bad value is an error naming
// the flag and the value.
options_parse parse_options(const std::vector<std::string_view>& args);

// The usage text printed by --help and after a bad argument.
std::string usage_text();

// The serial number of device `index` (0-based): prefix and a 6-digit number from 1, e.g.
// SIM000001 (7 digits from device 1 000 000 on).
std::string device_serial_number(std::string_view prefix, std::size_t index);

} // namespace adms::sim
