// admsd-sim: a fleet of simulated ZKTeco terminals (ATT push protocol) for benchmarking and
// checking an admsd deployment without hardware. tests/sim/README.md describes it.

#include "tests/sim/fleet.hpp"
#include "tests/sim/sim_options.hpp"
#include "tests/sim/sim_report.hpp"
#include "tz/zone.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>
#include <sys/resource.h>
#include <vector>

namespace {

// Raises the open-file limit to its hard limit (each connection is a descriptor) and returns
// the limit in force.
rlim_t raise_file_limit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        fmt::print(stderr, "admsd-sim: getrlimit(RLIMIT_NOFILE): {}\n", std::strerror(errno));
        return 1024;
    }
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            return raised.rlim_cur;
        }
        fmt::print(stderr, "admsd-sim: cannot raise RLIMIT_NOFILE to {}: {}\n", limit.rlim_max,
                   std::strerror(errno));
    }
    return limit.rlim_cur;
}

// User and system CPU seconds this process used so far.
std::pair<double, double> cpu_seconds()
{
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) != 0) {
        fmt::print(stderr, "admsd-sim: getrusage: {}\n", std::strerror(errno));
        return {0, 0};
    }
    auto to_s = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return {to_s(usage.ru_utime), to_s(usage.ru_stime)};
}

// Writes `text` to `path`; false (and a message) on failure.
bool write_file(const std::string& path, const std::string& text)
{
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) {
        fmt::print(stderr, "admsd-sim: cannot write {}: {}\n", path, std::strerror(errno));
        return false;
    }
    bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
    ok = std::fclose(file) == 0 && ok;
    if (!ok) {
        fmt::print(stderr, "admsd-sim: cannot write {}: {}\n", path, std::strerror(errno));
    }
    return ok;
}

int run(int argc, char** argv)
{
    std::vector<std::string_view> args(argv + 1, argv + argc);
    auto parsed = adms::sim::parse_options(args);
    if (parsed.help) {
        fmt::print("{}", adms::sim::usage_text());
        return 0;
    }
    if (!parsed.options) {
        fmt::print(stderr, "admsd-sim: {}\n{}", parsed.error, adms::sim::usage_text());
        return 2;
    }
    auto options = *parsed.options;
    auto zone = adms::tz::locate_zone(options.zone);
    if (!zone) {
        fmt::print(stderr, "admsd-sim: invalid --zone: {}\n", zone.error);
        return 2;
    }

    auto files = raise_file_limit();
    // Descriptors beyond the connections: stdio, the event loop's own, the JSON file.
    constexpr rlim_t reserved = 64;
    if (files <= reserved) {
        fmt::print(stderr, "admsd-sim: only {} file descriptors available\n", files);
        return 2;
    }
    if (options.max_connections > files - reserved) {
        if (!options.quiet) {
            fmt::print(stderr,
                       "admsd-sim: --max-connections {} lowered to {} (open-file limit {})\n",
                       options.max_connections, files - reserved, files);
        }
        options.max_connections = files - reserved;
    }

    auto outcome = adms::sim::run_fleet(options, *zone.value);
    if (!outcome.result) {
        fmt::print(stderr, "admsd-sim: {}\n", outcome.error);
        return 2;
    }
    auto& report = *outcome.result;
    std::tie(report.cpu_user_s, report.cpu_system_s) = cpu_seconds();
    fmt::print("{}", adms::sim::render_text(report));
    std::fflush(stdout);
    if (!options.json_path.empty() &&
        !write_file(options.json_path, adms::sim::render_json(report))) {
        return 1;
    }
    return report.exit_status;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        fmt::print(stderr, "admsd-sim: stopped by an unexpected error: {}\n", e.what());
        return 1;
    }
}
