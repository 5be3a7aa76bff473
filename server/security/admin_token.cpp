#include "server/security/admin_token.hpp"

#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace adms::server {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view file_name = "admin_token";

// A token file is one line; anything bigger is not a token file.
constexpr std::size_t max_file_size = 4096;

constexpr std::size_t token_bytes = 32;

std::string describe_errno(int error)
{
    return std::error_code{error, std::generic_category()}.message();
}

// Closes a file descriptor at scope exit.
struct fd_guard {
    int fd;
    explicit fd_guard(int f) : fd{f} {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard()
    {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    // Closes now, reporting the error (close can report a failed delayed write).
    int close()
    {
        int rc = ::close(fd);
        fd = -1;
        return rc;
    }
};

bool is_token68_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

// RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
bool is_token68(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size() && is_token68_char(s[i])) {
        ++i;
    }
    if (i == 0) {
        return false;
    }
    while (i < s.size() && s[i] == '=') {
        ++i;
    }
    return i == s.size();
}

std::string_view trim_whitespace(std::string_view s)
{
    auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// The OR of the XORs of `n` bytes: zero when they are equal. Why volatile: the compiler must
// perform every read, so it cannot turn the loop into a memcmp that stops at the first
// difference (the technique of OpenSSL's CRYPTO_memcmp).
unsigned difference(const char* a, const char* b, std::size_t n)
{
    const volatile auto* pa = reinterpret_cast<const volatile unsigned char*>(a);
    const volatile auto* pb = reinterpret_cast<const volatile unsigned char*>(b);
    unsigned acc = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc |= static_cast<unsigned>(pa[i] ^ pb[i]);
    }
    return acc;
}

std::string base64url(std::span<const unsigned char> bytes)
{
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        unsigned v = (unsigned{bytes[i]} << 16) | (unsigned{bytes[i + 1]} << 8) | bytes[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (auto rest = bytes.size() - i; rest > 0) {
        unsigned v = unsigned{bytes[i]} << 16;
        if (rest == 2) {
            v |= unsigned{bytes[i + 1]} << 8;
        }
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (rest == 2) {
            out += alphabet[(v >> 6) & 63];
        }
    }
    return out;
}

token_file failure(const fs::path& path, std::string error)
{
    token_file result;
    result.path = path;
    result.error = std::move(error);
    return result;
}

// The token in an existing file, or an error; nullopt when there is no such file.
std::optional<token_file> read_token_file(const fs::path& path)
{
    // O_NONBLOCK: a FIFO planted there must not hang startup (it is refused below).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int error = errno;
        if (error == ENOENT) {
            return std::nullopt;
        }
        return failure(path, fmt::format("cannot read {}: {}; it must belong to the user running "
                                         "the server (chown) with mode 600 (chmod 600 {})",
                                         path.string(), describe_errno(error), path.string()));
    }
    fd_guard guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return failure(path,
                       fmt::format("cannot stat {}: {}", path.string(), describe_errno(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
        return failure(path, fmt::format("{} is not a regular file; remove it to have a token "
                                         "generated at start",
                                         path.string()));
    }
    // Why any group/other bit: read lets another user use the API, write lets them plant a token.
    if ((st.st_mode & 077) != 0) {
        return failure(path, fmt::format("{} is accessible to group or others (mode {:03o}); "
                                         "run: chmod 600 {}",
                                         path.string(), st.st_mode & 0777, path.string()));
    }
    std::string content;
    std::array<char, 1024> buffer{};
    while (content.size() <= max_file_size) {
        auto n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return failure(path,
                           fmt::format("cannot read {}: {}", path.string(), describe_errno(errno)));
        }
        if (n == 0) {
            break;
        }
        content.append(buffer.data(), static_cast<std::size_t>(n));
    }
    if (content.size() > max_file_size) {
        return failure(path, fmt::format("{} is larger than {} bytes; it should hold one token",
                                         path.string(), max_file_size));
    }
    if (content.ends_with('\n')) {
        content.pop_back();
        if (content.ends_with('\r')) {
            content.pop_back();
        }
    }
    if (content.empty()) {
        return failure(path, fmt::format("{} is empty; delete it to have a new token generated "
                                         "at start, or write a token into it",
                                         path.string()));
    }
    if (!is_token68(content)) {
        return failure(path, fmt::format("{} holds characters a Bearer token cannot carry "
                                         "(spaces, tabs, extra lines); write one token on one line",
                                         path.string()));
    }
    token_file result;
    result.token = std::move(content);
    result.path = path;
    return result;
}

// Reads the file another process created first.
token_file read_winner(const fs::path& path)
{
    if (auto found = read_token_file(path)) {
        return *found;
    }
    return failure(path, fmt::format("{} exists but cannot be opened (a dangling symbolic link?); "
                                     "remove it to have a token generated at start",
                                     path.string()));
}

// Creates `file` exclusively with mode 0600, writes `content`, fsyncs and closes it. Returns 0,
// EEXIST when the name is taken (nothing written), or another errno with `error` set; a file
// this call created is removed again on failure, so no empty token file is left behind.
int write_new_file(const fs::path& file, std::string_view content, std::string& error)
{
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        if (e != EEXIST) {
            error = fmt::format("cannot create {}: {}", file.string(), describe_errno(e));
        }
        return e;
    }
    fd_guard guard{fd};
    auto fail = [&](std::string_view what) {
        int e = errno;
        error = fmt::format("cannot {} {}: {}", what, file.string(), describe_errno(e));
        guard.close();
        ::unlink(file.c_str());
        return e;
    };
    // Why: a umask can only have removed bits, but a umask like 0377 leaves the owner unable
    // to read the token back; make the mode exactly 0600.
    if (::fchmod(fd, 0600) != 0) {
        return fail("set the mode of");
    }
    while (!content.empty()) {
        auto n = ::write(fd, content.data(), content.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("write");
        }
        content.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd) != 0) {
        return fail("fsync");
    }
    if (guard.close() != 0) {
        int e = errno;
        error = fmt::format("cannot close {}: {}", file.string(), describe_errno(e));
        ::unlink(file.c_str());
        return e;
    }
    return 0;
}

// Makes a new file name durable. EINVAL: the filesystem cannot fsync directories.
std::string fsync_directory(const fs::path& dir)
{
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return fmt::format("cannot open {}: {}", dir.string(), describe_errno(errno));
    }
    fd_guard guard{fd};
    if (::fsync(fd) != 0 && errno != EINVAL) {
        return fmt::format("cannot fsync {}: {}", dir.string(), describe_errno(errno));
    }
    return {};
}

// The errors of link(2) on filesystems without hard links (FAT, some FUSE mounts).
bool link_unsupported(int error)
{
    return error == EPERM || error == ENOTSUP || error == EOPNOTSUPP || error == ENOSYS;
}

} // namespace

std::optional<std::string_view> bearer_token(std::string_view authorization)
{
    constexpr std::string_view scheme = "bearer";
    auto value = trim_whitespace(authorization);
    if (value.size() <= scheme.size() ||
        !protocol::text::iequals(value.substr(0, scheme.size()), scheme) ||
        value[scheme.size()] != ' ') {
        return std::nullopt;
    }
    auto rest = value.substr(scheme.size());
    auto token = rest.substr(std::min(rest.find_first_not_of(' '), rest.size()));
    if (!is_token68(token)) {
        return std::nullopt;
    }
    return token;
}

bool token_matches(std::string_view presented, std::span<const std::string> tokens)
{
    unsigned found = 0;
    for (const auto& token : tokens) {
        auto common = std::min(token.size(), presented.size());
        auto diff = difference(token.data(), presented.data(), common);
        diff |= static_cast<unsigned>(token.size() != presented.size());
        diff |= static_cast<unsigned>(token.empty());
        found |= static_cast<unsigned>(diff == 0);
    }
    return found != 0;
}

std::string generate_token()
{
    // Why base64url over hex: 43 characters instead of 64 for the same 256 bits, and its
    // alphabet is RFC 7235's token68, so the token goes into a header or URL unescaped.
    std::array<unsigned char, token_bytes> bytes{};
    std::size_t filled = 0;
    while (filled < bytes.size()) {
        auto n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error{errno, std::generic_category(), "getrandom"};
        }
        filled += static_cast<std::size_t>(n);
    }
    return base64url(bytes);
}

token_file load_or_create_token(const std::filesystem::path& data_dir)
{
    auto path = data_dir / file_name;
    if (auto existing = read_token_file(path)) {
        return *existing;
    }

    auto token = generate_token();
    auto content = token + "\n";
    std::string error;
    // Why a temporary name and link(2): the token appears under its name complete or not at
    // all, so a process racing us never reads a half-written file; and link, unlike rename,
    // fails when the name exists, so the first writer wins and the others read its token.
    auto temporary = data_dir / fmt::format(".admin_token.{}.{}.tmp", ::getpid(),
                                            generate_token().substr(0, 12));
    if (int e = write_new_file(temporary, content, error); e != 0) {
        return failure(path, e == EEXIST
                                 ? fmt::format("cannot create {}: it exists", temporary.string())
                                 : error);
    }
    int linked = ::link(temporary.c_str(), path.c_str());
    int link_error = errno;
    ::unlink(temporary.c_str());
    if (linked != 0) {
        if (link_error == EEXIST) {
            return read_winner(path);
        }
        if (!link_unsupported(link_error)) {
            return failure(path, fmt::format("cannot create {}: {}", path.string(),
                                             describe_errno(link_error)));
        }
        // No hard links here: create the name itself. A racing process may then see it empty
        // for a moment and report it; a restart reads it.
        if (int e = write_new_file(path, content, error); e != 0) {
            return e == EEXIST ? read_winner(path) : failure(path, error);
        }
    }
    if (auto synced = fsync_directory(data_dir); !synced.empty()) {
        return failure(path, synced);
    }
    token_file result;
    result.token = std::move(token);
    result.created = true;
    result.path = path;
    return result;
}

} // namespace adms::server
