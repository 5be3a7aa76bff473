#pragma once

#include "server/net.hpp"
#include "server/storage/database.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace adms::server {

// Whether T is a storage_result<U>.
template <class T>
struct is_storage_result : std::false_type {
};
template <class U>
struct is_storage_result<storage_result<U>> : std::true_type {
};

// The single writer, with group commit: `co_await queue.run(f)` queues f (a function taking the
// batch's write_tx, making writer calls through it and returning a storage_result), and one
// thread runs everything queued so far inside one database::write_batch, so one commit (one
// fsync) serves every request in it. Each writer call is a savepoint: a failing request is
// undone alone and the rest of the batch commits. The caller resumes on its own executor only
// after that commit: what it stored is on disk. When the commit fails, every f of the batch gets
// the commit's error instead of its result. Under no load a batch holds one call, so nothing
// waits for company.
// Thread safety: run() may be called from any thread; stop() once, from one.
class commit_queue {
  public:
    // `max_batch` bounds the calls sharing one commit (and so the latency one batch adds).
    explicit commit_queue(database& db, std::size_t max_batch = 1024);
    commit_queue(const commit_queue&) = delete;
    commit_queue& operator=(const commit_queue&) = delete;
    // Stops (see stop()).
    ~commit_queue();

    // Runs `f(tx)` on the writer thread inside the next batch and returns its result (or the
    // commit's error, or rethrows what f threw) once the batch is committed.
    template <class F>
    net::awaitable<std::invoke_result_t<F&, write_tx&>> run(F f)
    {
        using result = std::invoke_result_t<F&, write_tx&>;
        static_assert(is_storage_result<result>::value, "f must return a storage_result");
        auto value = co_await net::async_initiate<const net::use_awaitable_t<>&,
                                                  void(std::exception_ptr, std::optional<result>)>(
            [this](auto handler, F work) {
                submit(std::make_unique<job_for<F, decltype(handler)>>(std::move(work),
                                                                       std::move(handler)));
            },
            net::use_awaitable, std::move(f));
        co_return std::move(*value);
    }

    // Runs what is queued, then ends the thread; later run() calls fail with an error.
    void stop();

    // How many batches were committed and how many calls they carried (for /metrics).
    std::uint64_t batches() const;
    std::uint64_t calls() const;

  private:
    // One queued call: execute() inside the batch, complete() after its commit.
    struct job {
        virtual ~job() = default;
        virtual void execute(write_tx& tx) = 0;
        // `failure` is the batch's error, null when it committed.
        virtual void complete(const storage_error* failure) = 0;
    };

    template <class F, class Handler>
    struct job_for final : job {
        using result = std::invoke_result_t<F&, write_tx&>;
        job_for(F f, Handler h)
            : work{std::move(f)}, handler{std::move(h)}, guard{net::make_work_guard(
                                                             net::get_associated_executor(handler))}
        {
        }
        void execute(write_tx& tx) override
        {
            // The exception is handed to the awaiting coroutine, which rethrows it.
            try {
                value.emplace(work(tx));
            } catch (...) {
                error = std::current_exception();
            }
        }
        void complete(const storage_error* failure) override
        {
            if (failure != nullptr && !error) {
                value.emplace(storage_error{failure->message});
            }
            auto executor = net::get_associated_executor(handler);
            net::post(executor,
                      [h = std::move(handler), e = error, v = std::move(value)]() mutable {
                          std::move(h)(e, std::move(v));
                      });
            guard.reset();
        }
        F work;
        Handler handler;
        decltype(net::make_work_guard(
            net::get_associated_executor(std::declval<Handler&>()))) guard;
        std::optional<result> value;
        std::exception_ptr error;
    };

    void submit(std::unique_ptr<job> j);
    void loop();

    database& db_;
    const std::size_t max_batch_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<std::unique_ptr<job>> queue_; // guarded by mutex_
    bool stopping_ = false;                   // guarded by mutex_
    std::uint64_t batches_ = 0;               // guarded by mutex_
    std::uint64_t calls_ = 0;                 // guarded by mutex_
    std::thread thread_;
};

} // namespace adms::server
