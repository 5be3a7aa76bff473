#include "server/devices/command_waiters.hpp"

#include "server/net.hpp"

#include <fmt/format.h>

namespace adms::server {

struct command_waiters::waiter {
    std::string key;
    bool woken = false;                       // guarded by the owner's mutex
    std::shared_ptr<net::steady_timer> timer; // set while suspended in wait()
};

std::string command_waiters::key(std::string_view serial_number, std::string_view command_id)
{
    return fmt::format("{}\n{}", serial_number, command_id);
}

std::shared_ptr<command_waiters::waiter> command_waiters::subscribe(std::string key)
{
    auto* w = new waiter{std::move(key), false, nullptr};
    {
        std::lock_guard lock{mutex_};
        w->woken = cancelled_;
        waiting_.emplace(w->key, w);
    }
    return std::shared_ptr<waiter>{w, [this](waiter* p) {
                                       remove(p);
                                       delete p;
                                   }};
}

void command_waiters::remove(waiter* w)
{
    std::lock_guard lock{mutex_};
    auto [first, last] = waiting_.equal_range(w->key);
    for (auto it = first; it != last; ++it) {
        if (it->second == w) {
            waiting_.erase(it);
            return;
        }
    }
}

net::awaitable<bool> command_waiters::wait(const std::shared_ptr<waiter>& w,
                                           std::chrono::steady_clock::time_point deadline)
{
    auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor, deadline);
    {
        std::lock_guard lock{mutex_};
        if (w->woken) {
            co_return true;
        }
        w->timer = timer;
    }
    // A wake-up posts cancel() to the timer's executor: on a strand it runs only once this
    // coroutine is suspended in async_wait, so it cannot be lost in between.
    co_await timer->async_wait(net::as_tuple(net::use_awaitable));
    std::lock_guard lock{mutex_};
    w->timer.reset();
    co_return w->woken;
}

void command_waiters::notify(const std::string& key)
{
    std::lock_guard lock{mutex_};
    auto [first, last] = waiting_.equal_range(key);
    for (auto it = first; it != last; ++it) {
        auto* w = it->second;
        w->woken = true;
        if (w->timer) {
            net::post(w->timer->get_executor(), [timer = w->timer] { timer->cancel(); });
        }
    }
}

void command_waiters::cancel_all()
{
    std::lock_guard lock{mutex_};
    cancelled_ = true;
    for (auto& [key, w] : waiting_) {
        w->woken = true;
        if (w->timer) {
            net::post(w->timer->get_executor(), [timer = w->timer] { timer->cancel(); });
        }
    }
}

} // namespace adms::server
