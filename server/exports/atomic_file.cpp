#include "server/exports/atomic_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace adms::server {
namespace {

std::string reason(int error_number)
{
    return std::error_code{error_number, std::generic_category()}.message();
}

// fsyncs a directory, so a rename (or unlink) in it survives a power cut.
bool sync_directory(const std::filesystem::path& directory, std::string& error)
{
    int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        error = fmt::format("cannot open {} to sync it: {}", directory.string(), reason(errno));
        return false;
    }
    bool ok = ::fsync(fd) == 0;
    if (!ok) {
        error = fmt::format("cannot sync {}: {}", directory.string(), reason(errno));
    }
    ::close(fd);
    return ok;
}

} // namespace

std::string atomic_file::temporary_name(const std::string& name)
{
    return "." + name + ".tmp";
}

std::optional<atomic_file> atomic_file::create(const std::filesystem::path& directory,
                                               const std::string& name, std::string& error)
{
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) {
        error = fmt::format("cannot create the directory {}: {}", directory.string(), ec.message());
        return std::nullopt;
    }
    auto temporary = directory / temporary_name(name);
    // A temporary a crash left is replaced; O_EXCL and O_NOFOLLOW after the unlink: never write
    // through a link someone put in its place.
    if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) {
        error = fmt::format("cannot remove the old {}: {}", temporary.string(), reason(errno));
        return std::nullopt;
    }
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        error = fmt::format("cannot create {}: {}", temporary.string(), reason(errno));
        return std::nullopt;
    }
    return atomic_file{fd, directory / name, std::move(temporary)};
}

atomic_file::atomic_file(int fd, std::filesystem::path final_path, std::filesystem::path temporary)
    : fd_{fd}, final_{std::move(final_path)}, temporary_{std::move(temporary)}
{
}

atomic_file::atomic_file(atomic_file&& other) noexcept
    : fd_{other.fd_}, final_{std::move(other.final_)},
      temporary_{std::move(other.temporary_)}, size_{other.size_}
{
    other.fd_ = -1;
    other.temporary_.clear();
}

atomic_file::~atomic_file()
{
    discard();
}

void atomic_file::discard()
{
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!temporary_.empty()) {
        ::unlink(temporary_.c_str());
        temporary_.clear();
    }
}

bool atomic_file::write(std::string_view bytes, std::string& error)
{
    while (!bytes.empty()) {
        auto written = ::write(fd_, bytes.data(), bytes.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = fmt::format("cannot write {}: {}", temporary_.string(), reason(errno));
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(written));
        size_ += static_cast<std::size_t>(written);
    }
    return true;
}

bool atomic_file::commit(std::string& error)
{
    // The data first, then the name: a crash after the rename finds the whole file under it.
    if (::fsync(fd_) != 0) {
        error = fmt::format("cannot sync {}: {}", temporary_.string(), reason(errno));
        discard();
        return false;
    }
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        error = fmt::format("cannot close {}: {}", temporary_.string(), reason(errno));
        discard();
        return false;
    }
    if (::rename(temporary_.c_str(), final_.c_str()) != 0) {
        error = fmt::format("cannot rename {} to {}: {}", temporary_.string(), final_.string(),
                            reason(errno));
        discard();
        return false;
    }
    temporary_.clear();
    return sync_directory(final_.parent_path(), error);
}

std::size_t remove_stale_temporaries(const std::filesystem::path& directory,
                                     bool (*is_ours)(std::string_view name), std::string& error)
{
    std::error_code ec;
    std::filesystem::directory_iterator it{directory, ec};
    if (ec) {
        if (ec != std::errc::no_such_file_or_directory) {
            error = fmt::format("cannot list {}: {}", directory.string(), ec.message());
        }
        return 0;
    }
    std::size_t removed = 0;
    // increment(ec), not a range-for: a listing that fails part-way is an error value too.
    for (; it != std::filesystem::directory_iterator{}; it.increment(ec)) {
        auto file = it->path().filename().string();
        constexpr std::string_view suffix = ".tmp";
        if (file.size() <= 1 + suffix.size() || file.front() != '.' || !file.ends_with(suffix)) {
            continue;
        }
        auto name = std::string_view{file}.substr(1, file.size() - 1 - suffix.size());
        std::error_code type_ec;
        if (!is_ours(name) || !it->is_regular_file(type_ec)) {
            continue;
        }
        std::error_code remove_ec;
        if (std::filesystem::remove(it->path(), remove_ec)) {
            ++removed;
        } else if (remove_ec) {
            error = fmt::format("cannot remove {}: {}", it->path().string(), remove_ec.message());
        }
    }
    if (ec) {
        error = fmt::format("cannot list {}: {}", directory.string(), ec.message());
    }
    if (removed > 0) {
        sync_directory(directory, error);
    }
    return removed;
}

} // namespace adms::server
