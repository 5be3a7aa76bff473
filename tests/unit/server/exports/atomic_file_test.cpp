// The all-or-nothing export file on a real file system: the final name holds a whole file or
// none, temporaries do not outlive a failed or abandoned write, and only our own leftovers are
// removed at start.
#include "server/exports/atomic_file.hpp"
#include "server/exports/day_file.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using adms::server::atomic_file;
using adms::server::is_day_file_name;
using adms::server::remove_stale_temporaries;
using adms::test::temp_dir;

namespace {

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in{path, std::ios::binary};
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream{path, std::ios::binary} << text;
}

} // namespace

TEST_CASE("An atomic file appears under its name only when committed, whole", "[exports]")
{
    temp_dir dir;
    auto where = dir.path / "new" / "nested"; // created on demand
    std::string error;
    auto file = atomic_file::create(where, "punches-2026-11-30.csv", error);
    REQUIRE(file);
    CHECK(error.empty());
    CHECK(file->temporary_path() == where / ".punches-2026-11-30.csv.tmp");
    REQUIRE(file->write("id,device\r\n", error));
    REQUIRE(file->write("1,a\r\n", error));
    // Until the commit, the final name does not exist; the temporary does.
    CHECK_FALSE(std::filesystem::exists(file->path()));
    CHECK(std::filesystem::exists(file->temporary_path()));
    CHECK(file->size() == 16);
    REQUIRE(file->commit(error));
    CHECK(read_file(where / "punches-2026-11-30.csv") == "id,device\r\n1,a\r\n");
    CHECK_FALSE(std::filesystem::exists(where / ".punches-2026-11-30.csv.tmp"));

    SECTION("a rewrite replaces the file only at its commit")
    {
        auto again = atomic_file::create(where, "punches-2026-11-30.csv", error);
        REQUIRE(again);
        REQUIRE(again->write("id,device\r\n", error));
        CHECK(read_file(where / "punches-2026-11-30.csv") == "id,device\r\n1,a\r\n");
        REQUIRE(again->commit(error));
        CHECK(read_file(where / "punches-2026-11-30.csv") == "id,device\r\n");
    }
    SECTION("an abandoned write leaves the previous file and no temporary")
    {
        {
            auto abandoned = atomic_file::create(where, "punches-2026-11-30.csv", error);
            REQUIRE(abandoned);
            REQUIRE(abandoned->write("half a fi", error));
        }
        CHECK(read_file(where / "punches-2026-11-30.csv") == "id,device\r\n1,a\r\n");
        CHECK_FALSE(std::filesystem::exists(where / ".punches-2026-11-30.csv.tmp"));
    }
    SECTION("a temporary left by a crash is replaced, and a link there is not followed")
    {
        write_file(where / ".punches-2026-12-01.csv.tmp", "stale");
        auto next = atomic_file::create(where, "punches-2026-12-01.csv", error);
        REQUIRE(next);
        REQUIRE(next->commit(error));
        CHECK(read_file(where / "punches-2026-12-01.csv").empty());
        write_file(dir.path / "victim", "keep me");
        std::filesystem::create_symlink(dir.path / "victim", where / ".punches-2026-12-02.csv.tmp");
        auto linked = atomic_file::create(where, "punches-2026-12-02.csv", error);
        REQUIRE(linked);
        REQUIRE(linked->write("new", error));
        REQUIRE(linked->commit(error));
        CHECK(read_file(dir.path / "victim") == "keep me");
        CHECK(read_file(where / "punches-2026-12-02.csv") == "new");
    }
}

TEST_CASE("An atomic file that cannot be created or written says where and why", "[exports]")
{
    temp_dir dir;
    write_file(dir.path / "a-file", "x");
    std::string error;
    CHECK_FALSE(atomic_file::create(dir.path / "a-file" / "sub", "punches-2026-11-30.csv", error));
    CHECK_THAT(error, Catch::Contains("cannot create the directory") &&
                          Catch::Contains((dir.path / "a-file").string()));
    if (::geteuid() != 0) { // root writes anywhere
        auto locked = dir.path / "locked";
        std::filesystem::create_directories(locked);
        ::chmod(locked.c_str(), 0500);
        error.clear();
        CHECK_FALSE(atomic_file::create(locked, "punches-2026-11-30.csv", error));
        CHECK_THAT(error, Catch::Contains("cannot create") && Catch::Contains("Permission denied"));
        ::chmod(locked.c_str(), 0700);
    }
}

TEST_CASE("At start only our own temporaries are removed", "[exports]")
{
    temp_dir dir;
    write_file(dir.path / ".punches-2026-11-30.csv.tmp", "half");
    write_file(dir.path / ".punches-2026-12-01.csv.tmp", "half");
    write_file(dir.path / "punches-2026-11-29.csv", "whole");   // a finished file
    write_file(dir.path / ".payroll-job.tmp", "theirs");        // someone else's
    write_file(dir.path / ".punches-latest.csv.tmp", "theirs"); // not a day file's name
    std::string error;
    CHECK(remove_stale_temporaries(dir.path, &is_day_file_name, error) == 2);
    CHECK(error.empty());
    CHECK_FALSE(std::filesystem::exists(dir.path / ".punches-2026-11-30.csv.tmp"));
    CHECK_FALSE(std::filesystem::exists(dir.path / ".punches-2026-12-01.csv.tmp"));
    CHECK(std::filesystem::exists(dir.path / "punches-2026-11-29.csv"));
    CHECK(std::filesystem::exists(dir.path / ".payroll-job.tmp"));
    CHECK(std::filesystem::exists(dir.path / ".punches-latest.csv.tmp"));
    // A directory not made yet has nothing to remove, and is no error.
    CHECK(remove_stale_temporaries(dir.path / "missing", &is_day_file_name, error) == 0);
    CHECK(error.empty());

    CHECK(is_day_file_name("punches-2026-11-30.csv"));
    CHECK_FALSE(is_day_file_name("punches-2026-11-31.csv"));
    CHECK_FALSE(is_day_file_name("punches-2026-11-30.csv.bak"));
    CHECK_FALSE(is_day_file_name("punches-.csv"));
}
