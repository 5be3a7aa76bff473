#pragma once

#include "server/net.hpp"

#include <optional>
#include <type_traits>

namespace adms::server {

// Runs blocking work (SQLite, fsync) off the I/O threads: `co_await pool.run(f)` executes f on
// one of the pool's threads and resumes the caller on its own executor with f's result (or its
// exception). It serves the admin API's reads; writes go through commit_queue (group commit).
// Thread safety: run() may be called from any thread.
class blocking_pool {
  public:
    explicit blocking_pool(unsigned threads) : pool_{threads} {}

    // Runs `f()` on the pool and returns its result to the awaiting coroutine.
    template <class F>
    net::awaitable<std::invoke_result_t<F&>> run(F f)
    {
        using result = std::invoke_result_t<F&>;
        // co_spawn hands back a default-constructed value on error, so carry the result in an
        // optional: storage results have no default constructor.
        auto value = co_await net::co_spawn(
            pool_.get_executor(),
            [f = std::move(f)]() mutable -> net::awaitable<std::optional<result>> {
                co_return std::optional<result>{f()};
            },
            net::use_awaitable);
        co_return std::move(*value);
    }

    // Finishes queued work and joins the threads.
    void join() { pool_.join(); }

  private:
    net::thread_pool pool_;
};

} // namespace adms::server
