#include "server/version.hpp"

#include <fmt/core.h>

#include <string_view>

int main(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            fmt::print("usage: admsd [--version] [--help]\n"
                       "ADMS/iclock push server. The device server arrives with the next issue.\n");
            return 0;
        }
        if (arg != "--version") {
            fmt::print(stderr, "admsd: unknown argument '{}' (try --help)\n", arg);
            return 2;
        }
    }
    fmt::print("admsd {}\n", adms::server::version);
    return 0;
}
