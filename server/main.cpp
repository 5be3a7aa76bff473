#include "server/app.hpp"
#include "server/config/settings.hpp"
#include "server/observability/healthcheck.hpp"
#include "server/version.hpp"

#include <fmt/core.h>

#include <csignal>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace {

std::map<std::string, std::string> environment()
{
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string entry{*e};
        if (auto eq = entry.find('='); eq != std::string::npos) {
            env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
    }
    return env;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    // `admsd healthcheck [--SETTING VALUE]...`: probe the server those settings describe.
    bool healthcheck = !args.empty() && args.front() == "healthcheck";
    if (healthcheck) {
        args.erase(args.begin());
    }
    auto loaded = adms::server::load_settings(args, environment());
    if (loaded.show_help) {
        fmt::print("{}", adms::server::settings_help());
        return 0;
    }
    if (loaded.show_version) {
        fmt::print("admsd {}\n", adms::server::version);
        return 0;
    }
    if (!loaded.value) {
        fmt::print(stderr, "admsd: {}\n", loaded.error);
        return 2;
    }
    if (healthcheck) {
        auto result = adms::server::run_healthcheck(*loaded.value);
        fmt::print(result.exit_code == 0 ? stdout : stderr, "admsd healthcheck: {}\n",
                   result.message);
        return result.exit_code;
    }

    // Block SIGINT/SIGTERM before any thread starts, so only sigwait below receives them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    adms::server::app server{std::move(*loaded.value)};
    auto started = server.start();
    if (!started) {
        fmt::print(stderr, "admsd: {}\n", started.error);
        return 1;
    }
    int received = 0;
    sigwait(&signals, &received);
    server.stop();
    return 0;
}
