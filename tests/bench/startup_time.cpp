// startup_time: how long a server takes from exec to its first answered request. It forks and
// execs the command, connects to 127.0.0.1:PORT again and again until a `GET PATH` gets a complete
// 200 reply, prints the milliseconds from just before the fork to the end of that reply, stops
// the server with SIGTERM and repeats. tests/bench/run.sh times admsd (empty database and 10
// million punches) and nginx with it; a CTest case runs it once against admsd.
//
// Usage: startup_time [--runs N] [--port P] [--fresh-dir DIR] [--log FILE] [--path TARGET]
//                     [--timeout SECONDS] -- COMMAND ARG...
// In the arguments, `{port}` becomes the port and `{dir}` the --fresh-dir. Without --port each run
// takes a free port (bound to port 0 and released); a run whose server exits before answering is
// tried again on another port, at most three times, in case another process took that port.
// --fresh-dir is emptied before every run. The server's output goes to --log (appended), else to
// /dev/null.
// Output: one line per run, then `startup_time: runs=N median_ms=X min_ms=X max_ms=X`.
// Exit status: 0 when every run was answered; 1 when one was not; 2 on a usage error.

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What the command line asks for.
struct options {
    int runs = 5;
    unsigned short port = 0; // 0: a free port for each run
    std::string fresh_dir;
    std::string log = "/dev/null";
    std::string path = "/iclock/ping?SN=STARTUP0001";
    std::chrono::seconds timeout{30};
    std::vector<std::string> command;
};

[[noreturn]] void usage(const char* why)
{
    std::fprintf(stderr,
                 "startup_time: %s\nusage: startup_time [--runs N] [--port P] [--fresh-dir DIR] "
                 "[--log FILE] [--path TARGET] [--timeout SECONDS] -- COMMAND ARG...\n",
                 why);
    std::exit(2);
}

std::optional<long> parse_number(const char* text, long low, long high)
{
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
        return std::nullopt;
    }
    return value;
}

options parse_options(int argc, char** argv)
{
    options o;
    int i = 1;
    for (; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (i + 1 >= argc) {
            usage("an option without its value");
        }
        const char* value = argv[++i];
        if (arg == "--runs") {
            auto n = parse_number(value, 1, 1000);
            if (!n) {
                usage("--runs takes 1 to 1000");
            }
            o.runs = static_cast<int>(*n);
        } else if (arg == "--port") {
            auto n = parse_number(value, 1, 65535);
            if (!n) {
                usage("--port takes 1 to 65535");
            }
            o.port = static_cast<unsigned short>(*n);
        } else if (arg == "--fresh-dir") {
            o.fresh_dir = value;
        } else if (arg == "--log") {
            o.log = value;
        } else if (arg == "--path") {
            o.path = value;
        } else if (arg == "--timeout") {
            auto n = parse_number(value, 1, 3600);
            if (!n) {
                usage("--timeout takes 1 to 3600 seconds");
            }
            o.timeout = std::chrono::seconds{*n};
        } else {
            usage("unknown option");
        }
    }
    for (; i < argc; ++i) {
        o.command.emplace_back(argv[i]);
    }
    if (o.command.empty()) {
        usage("no command after --");
    }
    return o;
}

// A port nothing listens on right now: bound to port 0, read back, released.
unsigned short free_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        std::fprintf(stderr, "startup_time: cannot find a free port: %s\n", std::strerror(errno));
        std::exit(1);
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

std::string replace_all(std::string text, std::string_view from, std::string_view to)
{
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

// What has come back so far: nothing complete yet, or a whole reply (200 or not).
enum class reply_state { partial, ok, not_ok };

reply_state examine(const std::string& reply)
{
    auto end_of_headers = reply.find("\r\n\r\n");
    if (end_of_headers == std::string::npos) {
        return reply_state::partial;
    }
    std::size_t body = reply.size() - end_of_headers - 4;
    auto at = reply.find("\r\nContent-Length:");
    if (at == std::string::npos) {
        at = reply.find("\r\ncontent-length:");
    }
    if (at != std::string::npos && at < end_of_headers &&
        std::strtoul(reply.c_str() + at + 17, nullptr, 10) > body) {
        return reply_state::partial;
    }
    bool ok = reply.starts_with("HTTP/1.1 200 ") || reply.starts_with("HTTP/1.0 200 ");
    return ok ? reply_state::ok : reply_state::not_ok;
}

// One request on a fresh connection. True when a complete 200 reply came back; false when the
// connection was refused, or the reply was not 200 or ended early (the server is not ready yet).
bool answered(unsigned short port, const std::string& request, steady::time_point deadline)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto state = reply_state::partial;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size())) {
        std::string reply;
        char buffer[4096];
        while (state == reply_state::partial && steady::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) {
                continue;
            }
            ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) {
                break;
            }
            reply.append(buffer, static_cast<std::size_t>(n));
            state = examine(reply);
        }
    }
    ::close(fd);
    return state == reply_state::ok;
}

// "exit code 1", "signal 9": a wait status in words.
std::string describe(int status)
{
    if (WIFEXITED(status)) {
        return "exit code " + std::to_string(WEXITSTATUS(status)) +
               (WEXITSTATUS(status) == 127 ? " (command not found?)" : "");
    }
    if (WIFSIGNALED(status)) {
        return "signal " + std::to_string(WTERMSIG(status));
    }
    return "status " + std::to_string(status);
}

// Stops the server: SIGTERM, then SIGKILL after 10 s. Returns its wait status.
int stop(pid_t child)
{
    ::kill(child, SIGTERM);
    int status = 0;
    auto give_up = steady::now() + 10s;
    while (::waitpid(child, &status, WNOHANG) == 0) {
        if (steady::now() > give_up) {
            std::fprintf(stderr, "startup_time: pid %d ignored SIGTERM for 10 s: SIGKILL\n",
                         static_cast<int>(child));
            ::kill(child, SIGKILL);
            ::waitpid(child, &status, 0);
            break;
        }
        std::this_thread::sleep_for(1ms);
    }
    return status;
}

// One timed start. The milliseconds to the first answer, or nothing when the server exited
// first (`exited` says so) or the deadline passed.
std::optional<double> time_one_start(const options& o, unsigned short port, bool& exited)
{
    exited = false;
    std::vector<std::string> args;
    for (const auto& a : o.command) {
        args.push_back(
            replace_all(replace_all(a, "{port}", std::to_string(port)), "{dir}", o.fresh_dir));
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::string request = "GET " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nUser-Agent: iClock Proxy/1.09\r\nConnection: close\r\n\r\n";
    int log = ::open(o.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        std::fprintf(stderr, "startup_time: cannot open %s: %s\n", o.log.c_str(),
                     std::strerror(errno));
        std::exit(1);
    }

    auto started = steady::now();
    pid_t child = ::fork();
    if (child < 0) {
        std::fprintf(stderr, "startup_time: fork: %s\n", std::strerror(errno));
        std::exit(1);
    }
    if (child == 0) {
        // The server never outlives this tool, even when it is killed.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        std::fprintf(stderr, "startup_time: cannot run %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(log);

    auto deadline = started + o.timeout;
    std::optional<double> elapsed;
    while (steady::now() < deadline) {
        if (answered(port, request, deadline)) {
            elapsed = std::chrono::duration<double, std::milli>(steady::now() - started).count();
            break;
        }
        int status = 0;
        if (::waitpid(child, &status, WNOHANG) == child) {
            exited = true;
            std::fprintf(stderr, "startup_time: %s exited (%s) before answering\n", argv[0],
                         describe(status).c_str());
            return std::nullopt;
        }
        // Connection refused costs microseconds on loopback: a short pause keeps this from
        // taking a whole core from the server it is timing, at 0.2 ms of resolution.
        std::this_thread::sleep_for(200us);
    }
    int status = stop(child);
    if (elapsed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
        !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)) {
        std::fprintf(stderr, "startup_time: note: %s stopped with %s on SIGTERM\n", argv[0],
                     describe(status).c_str());
    }
    if (!elapsed) {
        std::fprintf(stderr, "startup_time: no 200 reply within %lld s\n",
                     static_cast<long long>(o.timeout.count()));
    }
    return elapsed;
}

} // namespace

int main(int argc, char** argv)
{
    options o = parse_options(argc, argv);
    std::vector<double> times;
    for (int run = 1; run <= o.runs; ++run) {
        std::optional<double> elapsed;
        for (int attempt = 1; attempt <= 3 && !elapsed; ++attempt) {
            if (!o.fresh_dir.empty()) {
                std::error_code error;
                std::filesystem::remove_all(o.fresh_dir, error);
                std::filesystem::create_directories(o.fresh_dir, error);
                if (error) {
                    std::fprintf(stderr, "startup_time: cannot make %s: %s\n", o.fresh_dir.c_str(),
                                 error.message().c_str());
                    return 1;
                }
            }
            bool exited = false;
            elapsed = time_one_start(o, o.port != 0 ? o.port : free_port(), exited);
            if (!elapsed && (!exited || o.port != 0)) {
                break; // a timeout, or a fixed port: another attempt would not differ
            }
        }
        if (!elapsed) {
            std::fprintf(stderr, "startup_time: run %d failed\n", run);
            return 1;
        }
        std::printf("startup_time: run %d: %.3f ms\n", run, *elapsed);
        std::fflush(stdout);
        times.push_back(*elapsed);
    }
    std::sort(times.begin(), times.end());
    std::size_t middle = times.size() / 2;
    double median = times.size() % 2 == 1 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
    std::printf("startup_time: runs=%zu median_ms=%.3f min_ms=%.3f max_ms=%.3f\n", times.size(),
                median, times.front(), times.back());
    return 0;
}
