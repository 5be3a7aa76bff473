#include "server/security/admin_token.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <random>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace adms::server;
namespace fs = std::filesystem;

namespace {

// The shared temp dir, with the file this suite works on.
struct temp_dir : adms::test::temp_dir {
    fs::path token() const { return path / "admin_token"; }
};

void write_file(const fs::path& file, std::string_view content, fs::perms mode)
{
    {
        std::ofstream out{file, std::ios::binary};
        out << content;
    }
    fs::permissions(file, mode);
}

std::string read_file(const fs::path& file)
{
    std::ifstream in{file, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, {}};
}

unsigned mode_of(const fs::path& file)
{
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

const std::string base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

TEST_CASE("A Bearer token is taken from an Authorization value", "[token]")
{
    CHECK(bearer_token("Bearer abc") == "abc");
    CHECK(bearer_token("bearer abc") == "abc");
    CHECK(bearer_token("BEARER abc") == "abc");
    CHECK(bearer_token("Bearer    abc") == "abc");
    CHECK(bearer_token("  Bearer abc \t") == "abc");
    CHECK(bearer_token("Bearer A-b_c.d~e+f/g==") == "A-b_c.d~e+f/g==");
}

TEST_CASE("Other schemes and malformed Bearer values give no token", "[token]")
{
    CHECK_FALSE(bearer_token(""));
    CHECK_FALSE(bearer_token("Bearer"));
    CHECK_FALSE(bearer_token("Bearer "));
    CHECK_FALSE(bearer_token("Bearer     "));
    CHECK_FALSE(bearer_token("Bearerabc"));
    CHECK_FALSE(bearer_token("Bearer\tabc"));
    CHECK_FALSE(bearer_token("Basic YWRtaW46YWRtaW4="));
    CHECK_FALSE(bearer_token("Token abc"));
    CHECK_FALSE(bearer_token("abc"));
    CHECK_FALSE(bearer_token("Bearer a b"));
    CHECK_FALSE(bearer_token("Bearer abc\r\n"));
    CHECK_FALSE(bearer_token("Bearer =abc"));
    CHECK_FALSE(bearer_token("Bearer ab=c"));
    CHECK_FALSE(bearer_token("Bearer \"abc\""));
}

TEST_CASE("A presented token matches only an exact, non-empty configured token", "[token]")
{
    const std::vector<std::string> tokens{"alpha-token", "beta", ""};
    CHECK(token_matches("alpha-token", tokens));
    CHECK(token_matches("beta", tokens));
    CHECK_FALSE(token_matches("alpha", tokens));         // a prefix
    CHECK_FALSE(token_matches("alpha-token-x", tokens)); // longer
    CHECK_FALSE(token_matches("alpha-tokeN", tokens));   // last byte differs
    CHECK_FALSE(token_matches("Alpha-token", tokens));   // first byte differs
    CHECK_FALSE(token_matches("bet", tokens));
    CHECK_FALSE(token_matches("", tokens)); // the empty entry never matches
    CHECK_FALSE(token_matches("beta", std::vector<std::string>{}));
    CHECK_FALSE(token_matches("", std::vector<std::string>{""}));
}

TEST_CASE("Generated tokens are 43 base64url characters and differ", "[token]")
{
    auto a = generate_token();
    auto b = generate_token();
    CHECK(a.size() == 43);
    CHECK(b.size() == 43);
    CHECK(a != b);
    CHECK(bearer_token("Bearer " + a) == a);

    // 256 bits in 43 characters: the last one carries 4 bits, so its low 2 bits are zero.
    std::set<char> seen;
    std::string outside_alphabet;
    int bad_last = 0;
    for (int i = 0; i < 200; ++i) {
        auto token = generate_token();
        REQUIRE(token.size() == 43);
        for (char c : token) {
            if (base64url_alphabet.find(c) == std::string::npos) {
                outside_alphabet += c;
            }
            seen.insert(c);
        }
        bad_last += base64url_alphabet.find(token.back()) % 4 != 0 ? 1 : 0;
    }
    CHECK(outside_alphabet.empty());
    CHECK(bad_last == 0);
    // 8,400 random characters reach every one of the 64 (a miss has odds below 1e-50).
    CHECK(seen.size() == 64);
}

TEST_CASE("A missing token file is created with mode 0600 and read back unchanged", "[token]")
{
    temp_dir dir;
    auto first = load_or_create_token(dir.path);
    INFO(first.error);
    REQUIRE(first);
    CHECK(first.created);
    CHECK(first.path == dir.token());
    CHECK(first.token.size() == 43);
    CHECK(mode_of(dir.token()) == 0600);
    CHECK(read_file(dir.token()) == first.token + "\n");
    // The temporary it was written under is gone.
    CHECK(std::distance(fs::directory_iterator{dir.path}, fs::directory_iterator{}) == 1);

    auto second = load_or_create_token(dir.path);
    REQUIRE(second);
    CHECK_FALSE(second.created);
    CHECK(second.token == first.token);
}

TEST_CASE("The created token file is mode 0600 whatever the umask", "[token]")
{
    temp_dir dir;
    auto previous = ::umask(0377);
    auto made = load_or_create_token(dir.path);
    ::umask(previous);
    INFO(made.error);
    REQUIRE(made);
    CHECK(mode_of(dir.token()) == 0600);
}

TEST_CASE("A token written by an administrator is read with its newline trimmed", "[token]")
{
    temp_dir dir;
    SECTION("LF")
    {
        write_file(dir.token(), "my-own-token\n", fs::perms::owner_read | fs::perms::owner_write);
    }
    SECTION("CRLF")
    {
        write_file(dir.token(), "my-own-token\r\n", fs::perms::owner_read);
    }
    SECTION("no newline")
    {
        write_file(dir.token(), "my-own-token", fs::perms::owner_read | fs::perms::owner_write);
    }
    auto read = load_or_create_token(dir.path);
    INFO(read.error);
    REQUIRE(read);
    CHECK_FALSE(read.created);
    CHECK(read.token == "my-own-token");
}

TEST_CASE("A token file readable by group or others is refused with the chmod to run", "[token]")
{
    temp_dir dir;
    write_file(dir.token(), "secret\n",
               fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                   fs::perms::others_read);
    auto read = load_or_create_token(dir.path);
    CHECK_FALSE(read);
    CHECK(read.token.empty());
    CHECK(contains(read.error, "mode 644"));
    CHECK(contains(read.error, "chmod 600 " + dir.token().string()));
    // Nothing was overwritten.
    CHECK(read_file(dir.token()) == "secret\n");

    fs::permissions(dir.token(),
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_write);
    CHECK(contains(load_or_create_token(dir.path).error, "chmod 600"));
}

TEST_CASE("An empty or malformed token file is refused", "[token]")
{
    temp_dir dir;
    auto mode = fs::perms::owner_read | fs::perms::owner_write;
    SECTION("empty")
    {
        write_file(dir.token(), "", mode);
        auto read = load_or_create_token(dir.path);
        CHECK_FALSE(read);
        CHECK(contains(read.error, "is empty"));
        CHECK(read_file(dir.token()).empty()); // left for the administrator
    }
    SECTION("only a newline")
    {
        write_file(dir.token(), "\n", mode);
        CHECK(contains(load_or_create_token(dir.path).error, "is empty"));
    }
    SECTION("two words")
    {
        write_file(dir.token(), "two words\n", mode);
        CHECK(contains(load_or_create_token(dir.path).error, "one token on one line"));
    }
    SECTION("two lines")
    {
        write_file(dir.token(), "first\nsecond\n", mode);
        CHECK(contains(load_or_create_token(dir.path).error, "one token on one line"));
    }
    SECTION("too large")
    {
        write_file(dir.token(), std::string(5000, 'a'), mode);
        CHECK(contains(load_or_create_token(dir.path).error, "larger than 4096 bytes"));
    }
    SECTION("a FIFO, without blocking on it")
    {
        REQUIRE(::mkfifo(dir.token().c_str(), 0600) == 0);
        CHECK(contains(load_or_create_token(dir.path).error, "not a regular file"));
    }
    SECTION("a directory")
    {
        fs::create_directory(dir.token());
        fs::permissions(dir.token(), fs::perms::owner_all);
        CHECK(contains(load_or_create_token(dir.path).error, "not a regular file"));
    }
}

TEST_CASE("An unreadable token file is refused", "[token]")
{
    temp_dir dir;
    write_file(dir.token(), "secret\n", fs::perms::none);
    if (::geteuid() != 0) {
        auto read = load_or_create_token(dir.path);
        CHECK_FALSE(read);
        CHECK(contains(read.error, "cannot read"));
        return;
    }
    // Root reads any file: the check runs in a child that gives up root for nobody (65534),
    // for whom the directory is searchable and the file, owned by root with mode 000, is not.
    fs::permissions(dir.path,
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(out[0]);
        std::string report;
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0) {
            report = "setuid failed";
        } else {
            auto read = load_or_create_token(dir.path);
            report = read ? "read: " + read.token : "error: " + read.error;
        }
        auto written = ::write(out[1], report.data(), report.size());
        ::_exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
    }
    ::close(out[1]);
    std::string report;
    char buffer[512];
    for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) {
        report.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO(report);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    REQUIRE(report != "setuid failed");
    CHECK(report.starts_with("error: "));
    CHECK(contains(report, "cannot read"));
    CHECK(contains(report, "Permission denied"));
}

TEST_CASE("A missing data directory is reported, not created", "[token]")
{
    temp_dir dir;
    auto read = load_or_create_token(dir.path / "absent");
    CHECK_FALSE(read);
    CHECK(contains(read.error, "cannot create"));
    CHECK_FALSE(fs::exists(dir.path / "absent"));
}

TEST_CASE("Processes racing to create the token all end up with the winner's", "[token]")
{
    for (int round = 0; round < 20; ++round) {
        temp_dir dir;
        constexpr int racers = 4;
        std::vector<token_file> results(racers);
        std::atomic<int> ready{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < racers; ++i) {
            threads.emplace_back([&, i] {
                ready.fetch_add(1);
                while (ready.load() < racers) {
                }
                results[i] = load_or_create_token(dir.path);
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        int created = 0;
        for (const auto& r : results) {
            INFO(r.error);
            REQUIRE(r);
            CHECK(r.token == results[0].token);
            created += r.created ? 1 : 0;
        }
        CHECK(created == 1);
        CHECK(read_file(dir.token()) == results[0].token + "\n");
    }
}
