#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// A file that appears whole or not at all: written under a temporary name in the same directory
// (".<name>.tmp": hidden, and not matched by a reader's "punches-*.csv"), then fsynced, renamed
// over the final name and the directory fsynced. A reader never sees half a file, and after a
// crash the final name holds the previous complete file or none. A temporary left by a crash
// is removed by remove_stale_temporaries at the next start, or replaced by the next write.
// Errors are values: the message names the file and the system's reason.
// Thread safety: none; one thread at a time per object.
class atomic_file {
  public:
    // Creates `directory` when missing and opens the temporary of `name` in it (replacing any
    // left there). nullopt with `error` set when that fails.
    static std::optional<atomic_file> create(const std::filesystem::path& directory,
                                             const std::string& name, std::string& error);

    atomic_file(atomic_file&& other) noexcept;
    atomic_file& operator=(atomic_file&&) = delete;
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;
    // Closes and removes the temporary unless commit() succeeded.
    ~atomic_file();

    // Appends `bytes`; false with `error` set when the write fails (disk full, I/O error).
    bool write(std::string_view bytes, std::string& error);
    // fsync, rename over the final name, fsync the directory; false with `error` set (the
    // temporary is then removed and the final name left as it was).
    bool commit(std::string& error);

    // The final path, and the temporary's.
    const std::filesystem::path& path() const { return final_; }
    const std::filesystem::path& temporary_path() const { return temporary_; }
    // Bytes written so far.
    std::size_t size() const { return size_; }

    // The temporary name of `name`: ".<name>.tmp".
    static std::string temporary_name(const std::string& name);

  private:
    atomic_file(int fd, std::filesystem::path final_path, std::filesystem::path temporary);
    void discard();

    int fd_ = -1;
    std::filesystem::path final_;
    std::filesystem::path temporary_;
    std::size_t size_ = 0;
};

// Removes the temporaries a crash left in `directory`: files named ".<name>.tmp" whose <name>
// `is_ours` accepts (other files are never touched). Returns how many were removed; a missing
// directory counts as none. `error` tells what could not be removed.
std::size_t remove_stale_temporaries(const std::filesystem::path& directory,
                                     bool (*is_ours)(std::string_view name), std::string& error);

} // namespace adms::server
