#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace adms::server {

// Lets an admin request wait for a device's result to one queued command (a time sync) without
// polling the database: the device service calls notify() when a result for the command is
// recorded, which wakes every request waiting on it.
// Thread safety: every member function may be called from any thread.
class command_waiters {
  public:
    struct waiter; // one waiting request

    // The key of a command: its device and id.
    static std::string key(std::string_view serial_number, std::string_view command_id);

    // Registers interest in `key` before the caller checks the command's state, so a result that
    // arrives in between is not missed. Unsubscribes when the returned pointer is released.
    std::shared_ptr<waiter> subscribe(std::string key);

    // Suspends until the command is notified, cancel_all() is called, or `deadline` passes.
    // True when notified (or cancelled); false on the deadline. Run it on a strand.
    boost::asio::awaitable<bool> wait(const std::shared_ptr<waiter>& w,
                                      std::chrono::steady_clock::time_point deadline);

    // Wakes every request waiting on `key`.
    void notify(const std::string& key);

    // Wakes every waiting request (the server is stopping); later waits return at once.
    void cancel_all();

  private:
    void remove(waiter* w);

    std::mutex mutex_;
    std::multimap<std::string, waiter*, std::less<>> waiting_;
    bool cancelled_ = false;
};

} // namespace adms::server
