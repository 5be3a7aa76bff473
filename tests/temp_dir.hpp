#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <system_error>
#include <unistd.h>

namespace adms::test {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
// Named by process id and a random number, so parallel CTest processes never share one.
struct temp_dir {
    std::filesystem::path path;
    temp_dir()
    {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() /
               fmt::format("admsd-test-{}-{:016x}", ::getpid(), (std::uint64_t{rd()} << 32) | rd());
        std::filesystem::create_directories(path);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

} // namespace adms::test
