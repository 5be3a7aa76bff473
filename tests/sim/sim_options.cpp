#include "tests/sim/sim_options.hpp"

#include "protocol/query.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <system_error>

namespace adms::sim {
namespace {

// The whole of `text` as a number of type `Number`; nullopt for anything else.
template <class Number>
std::optional<Number> parse_number(std::string_view text)
{
    Number value{};
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(text.data(), last, value);
    if (text.empty() || ec != std::errc{} || end != last) {
        return std::nullopt;
    }
    if constexpr (std::is_floating_point_v<Number>) {
        if (!std::isfinite(value)) {
            return std::nullopt;
        }
    }
    return value;
}

// Splits HOST:PORT (or [IPv6]:PORT) into `o`; false when it is not of that shape.
bool parse_target(std::string_view text, sim_options& o)
{
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    auto host = text.substr(0, colon);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') {
            return false;
        }
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return false; // an IPv6 address needs brackets
    }
    auto port = parse_number<std::uint16_t>(text.substr(colon + 1));
    if (!port || *port == 0) {
        return false;
    }
    o.target = std::string{text};
    o.target_host = std::string{host};
    o.target_port = *port;
    return true;
}

} // namespace

std::string usage_text()
{
    return "usage: admsd-sim --target HOST:PORT [options]\n"
           "  --devices N           virtual terminals (default 10)\n"
           "  --sn-prefix P         SNs are P000001, P000002, ... (default SIM)\n"
           "  --duration S          seconds of activity (default 30), then the drain\n"
           "  --drain S             longest wait for unacknowledged punches (default 15)\n"
           "  --delay S|server      seconds between polls (default 10); 'server': the handshake's "
           "Delay\n"
           "  --ramp S              spread the handshakes over S seconds (default 0)\n"
           "  --warmup S            leave requests started in the first S seconds out of the "
           "latencies\n"
           "  --keep-alive          reuse one connection per device (default: Connection: close)\n"
           "  --stub-server         take any 200 handshake reply (a stub answering OK, for a "
           "baseline)\n"
           "  --punch-interval S    mean seconds between realtime punches per device (default 0 = "
           "none)\n"
           "  --backlog N           punches per device pending at start, sent in 128-line batches\n"
           "  --clock-offset S      device clocks start off by uniform [-S, +S] seconds (default "
           "0)\n"
           "  --drift-ppm D         device clocks run off by uniform [-D, +D] ppm (default 0)\n"
           "  --zone NAME           IANA zone of the device clocks (default UTC)\n"
           "  --max-connections N   cap on simultaneous connections (default 4096)\n"
           "  --source-addresses N  spread client sockets over 127.0.0.1..127.0.0.N (default 1)\n"
           "  --seed N              random seed (default 1)\n"
           "  --json FILE           also write the report as JSON\n"
           "  --quiet               only the report\n"
           "  --fast-retry          retry after min(Retry-After or ErrorDelay, 1 s) (the default)\n"
           "  --no-fast-retry       retry after Retry-After or ErrorDelay, as devices do\n"
           "  --timeout S           deadline of one request, connect included (default 10)\n"
           "  --threads N           I/O threads, devices split between them (default 1)\n"
           "Exit status: 0 when every punch was acknowledged, 1 otherwise, 2 for bad arguments.\n";
}

std::string device_serial_number(std::string_view prefix, std::size_t index)
{
    return fmt::format("{}{:06}", prefix, index + 1);
}

options_parse parse_options(const std::vector<std::string_view>& args)
{
    options_parse result;
    sim_options o;
    bool have_target = false;
    auto fail = [&](std::string message) {
        result.error = std::move(message);
        return result;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view name = args[i];
        // Flags without a value.
        if (name == "--help" || name == "-h") {
            result.help = true;
            return result;
        }
        if (name == "--keep-alive") {
            o.keep_alive = true;
            continue;
        }
        if (name == "--stub-server") {
            o.stub_server = true;
            continue;
        }
        if (name == "--quiet") {
            o.quiet = true;
            continue;
        }
        if (name == "--fast-retry") {
            o.fast_retry = true;
            continue;
        }
        if (name == "--no-fast-retry") {
            o.fast_retry = false;
            continue;
        }
        if (i + 1 >= args.size()) {
            return fail(name.starts_with("--") ? fmt::format("missing value after {}", name)
                                               : fmt::format("unexpected argument '{}'", name));
        }
        std::string_view value = args[++i];
        auto seconds = [&](double& out, double min, bool min_allowed) {
            auto v = parse_number<double>(value);
            if (!v || *v < min || (!min_allowed && *v == min) || *v > 1e9) {
                return false;
            }
            out = *v;
            return true;
        };
        auto count = [&]<class Int>(Int& out, Int min, Int max) {
            auto v = parse_number<Int>(value);
            if (!v || *v < min || *v > max) {
                return false;
            }
            out = *v;
            return true;
        };
        bool ok = true;
        if (name == "--target") {
            ok = parse_target(value, o);
            have_target = ok;
        } else if (name == "--devices") {
            ok = count(o.devices, std::size_t{1}, std::size_t{999999});
        } else if (name == "--sn-prefix") {
            o.sn_prefix = std::string{value};
            ok = protocol::is_valid_serial_number(device_serial_number(value, 999998));
        } else if (name == "--duration") {
            ok = seconds(o.duration_s, 0, false);
        } else if (name == "--drain") {
            ok = seconds(o.drain_s, 0, true);
        } else if (name == "--delay") {
            o.delay_from_server = value == "server";
            ok = o.delay_from_server || seconds(o.delay_s, 0.01, true);
        } else if (name == "--ramp") {
            ok = seconds(o.ramp_s, 0, true);
        } else if (name == "--warmup") {
            ok = seconds(o.warmup_s, 0, true);
        } else if (name == "--punch-interval") {
            ok = seconds(o.punch_interval_s, 0, true) &&
                 (o.punch_interval_s == 0 || o.punch_interval_s >= 0.001);
        } else if (name == "--backlog") {
            ok = count(o.backlog, std::uint64_t{0}, std::uint64_t{100000000});
        } else if (name == "--clock-offset") {
            ok = seconds(o.clock_offset_s, 0, true) && o.clock_offset_s <= 315360000; // 10 years
        } else if (name == "--drift-ppm") {
            ok = seconds(o.drift_ppm, 0, true) && o.drift_ppm <= 100000;
        } else if (name == "--zone") {
            o.zone = std::string{value};
            ok = !value.empty();
        } else if (name == "--max-connections") {
            ok = count(o.max_connections, std::size_t{1}, std::size_t{10000000});
        } else if (name == "--source-addresses") {
            ok = count(o.source_addresses, 1u, 254u);
        } else if (name == "--seed") {
            ok = count(o.seed, std::uint64_t{0}, ~std::uint64_t{0});
        } else if (name == "--json") {
            o.json_path = std::string{value};
            ok = !value.empty();
        } else if (name == "--timeout") {
            ok = seconds(o.timeout_s, 0.001, true);
        } else if (name == "--threads") {
            ok = count(o.threads, 1u, 64u);
        } else {
            return fail(fmt::format("unknown option '{}'", name));
        }
        if (!ok) {
            return fail(fmt::format("invalid {} '{}'", name, value));
        }
    }
    if (!have_target) {
        return fail("--target HOST:PORT is required");
    }
    if (o.threads > o.devices) {
        o.threads = static_cast<unsigned>(o.devices);
    }
    result.options = std::move(o);
    return result;
}

} // namespace adms::sim
