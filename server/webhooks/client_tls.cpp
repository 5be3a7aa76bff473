#include "server/webhooks/client_tls.hpp"

#include <boost/asio/ssl/context.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <openssl/ssl.h>

namespace adms::server::webhooks {
namespace {

namespace ssl = boost::asio::ssl;

// What a ca_file was when its context was made.
struct file_stamp {
    std::filesystem::file_time_type modified{};
    std::uintmax_t size = 0;
    bool operator==(const file_stamp&) const = default;
};

file_stamp stamp_of(const std::string& ca_file)
{
    if (ca_file.empty()) {
        return {};
    }
    std::error_code ec;
    file_stamp stamp;
    stamp.modified = std::filesystem::last_write_time(ca_file, ec);
    stamp.size = ec ? 0 : std::filesystem::file_size(ca_file, ec);
    return ec ? file_stamp{} : stamp;
}

// One line of printable ASCII (OpenSSL's messages, a path from the configuration).
std::string printable(std::string_view text)
{
    std::string out;
    for (char c : text.substr(0, 300)) {
        auto byte = static_cast<unsigned char>(c);
        out += (byte < 0x20 || byte >= 0x7f) ? '?' : c;
    }
    return out;
}

client_context make_context(const std::string& ca_file)
{
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    context->set_default_verify_paths(ec);
    if (ec) {
        return {nullptr,
                fmt::format("cannot load the system's trusted CAs: {}", printable(ec.message()))};
    }
    if (!ca_file.empty()) {
        context->load_verify_file(ca_file, ec);
        if (ec) {
            return {nullptr, fmt::format("cannot load ca_file '{}': {}", printable(ca_file),
                                         printable(ec.message()))};
        }
    }
    context->set_verify_mode(ssl::verify_peer);
    return {std::move(context), {}};
}

// The contexts made so far, by ca_file. A handful in practice (one per private CA); bounded all
// the same, since endpoints come and go.
class context_cache {
  public:
    client_context get(const std::string& ca_file)
    {
        auto stamp = stamp_of(ca_file);
        {
            std::lock_guard lock{mutex_};
            auto it = entries_.find(ca_file);
            if (it != entries_.end() && it->second.stamp == stamp) {
                return {it->second.context, {}};
            }
        }
        // Made outside the lock: loading takes long, and two threads making the same context at
        // once only costs the time of one.
        auto made = make_context(ca_file);
        if (made.context) {
            std::lock_guard lock{mutex_};
            if (entries_.size() >= max_entries) {
                entries_.clear();
            }
            entries_[ca_file] = {made.context, stamp};
        }
        return made;
    }

  private:
    static constexpr std::size_t max_entries = 64;
    struct entry {
        std::shared_ptr<ssl::context> context;
        file_stamp stamp;
    };
    std::mutex mutex_;
    std::map<std::string, entry> entries_;
};

} // namespace

client_context client_tls_context(const std::string& ca_file)
{
    static context_cache cache;
    return cache.get(ca_file);
}

} // namespace adms::server::webhooks
