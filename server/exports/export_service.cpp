#include "server/exports/export_service.hpp"

#include "protocol/civil_time.hpp"
#include "server/exports/atomic_file.hpp"
#include "server/exports/day_file.hpp"
#include "server/exports/export_schedule.hpp"
#include "server/net.hpp"
#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

using std::chrono::days;
using std::chrono::local_days;
using clock = std::chrono::system_clock;

// A failed scheduled run is tried again this much later (a full disk, a missing mount).
constexpr std::chrono::seconds retry_delay{60};
// The schedule looks at the clock at least this often, so a changed system clock is noticed.
constexpr std::chrono::seconds longest_sleep{60};

std::chrono::sys_seconds now_seconds()
{
    return std::chrono::floor<std::chrono::seconds>(clock::now());
}

std::string day_text(local_days day)
{
    return protocol::format_civil_date(day);
}

} // namespace

export_service::export_service(export_table exports, tz::zone zone, database& store,
                               commit_queue& writer,
                               std::function<device_lookup()> device_lookup_now, logger& log,
                               metrics& stats, export_completed_hook on_completed)
    : zone_{zone}, store_{store}, writer_{writer},
      device_lookup_now_{std::move(device_lookup_now)}, log_{log}, stats_{stats},
      on_completed_{std::move(on_completed)}, files_{std::make_unique<blocking_pool>(1)}
{
    for (auto& [name, settings] : exports) {
        jobs_[name].settings = std::move(settings);
    }
}

export_service::~export_service()
{
    stop();
}

storage_status export_service::load()
{
    auto states = store_.exports().list_export_states();
    if (!states) {
        return states.error;
    }
    std::vector<std::pair<std::string, std::string>> directories;
    {
        std::lock_guard lock{mutex_};
        for (auto& state : *states.value) {
            if (auto it = jobs_.find(state.name); it != jobs_.end()) {
                it->second.last_completed = state.last_completed_day;
                it->second.last_run = std::move(state.last_run);
            }
        }
        for (const auto& [name, j] : jobs_) {
            directories.emplace_back(name, j.settings.directory);
        }
    }
    // Nothing writes yet: what is there is a crash's leftover.
    for (const auto& [name, directory] : directories) {
        std::string error;
        auto removed = remove_stale_temporaries(directory, &is_day_file_name, error);
        if (removed > 0) {
            log_.event("export",
                       fmt::format("Export {}: removed {} temporary file{} a crash left in {}",
                                   name, removed, removed == 1 ? "" : "s",
                                   escape_for_log(directory)));
        }
        if (!error.empty()) {
            log_.event("export", fmt::format("Export {}: {}", name, escape_for_log(error)));
        }
    }
    return std::monostate{};
}

bool export_service::has_export(std::string_view name) const
{
    std::lock_guard lock{mutex_};
    return jobs_.find(name) != jobs_.end();
}

std::vector<export_view> export_service::list() const
{
    auto now = now_seconds();
    std::lock_guard lock{mutex_};
    std::vector<export_view> views;
    for (const auto& [name, j] : jobs_) {
        auto next = next_export(j.last_completed, now, j.settings.at, zone_);
        views.push_back(
            {name, j.settings, j.last_completed, j.last_run, next.day, next.due_at, j.last_error});
    }
    return views;
}

net::awaitable<export_outcome> export_service::run_now(std::string name, local_days day)
{
    co_return co_await run_day(name, day, false);
}

net::awaitable<export_outcome> export_service::run_day(const std::string& name, local_days day,
                                                       bool scheduled)
{
    export_outcome outcome;
    std::string directory;
    {
        std::lock_guard lock{mutex_};
        auto it = jobs_.find(name);
        if (it == jobs_.end()) {
            outcome.error = export_error::unknown_export;
            outcome.message = fmt::format("Export not found: {}", name);
            co_return outcome;
        }
        directory = it->second.settings.directory;
    }
    if (stopping_) {
        outcome.error = export_error::stopping;
        outcome.message = fmt::format("export {}, {}: the server is stopping", name, day_text(day));
        co_return outcome;
    }
    auto device_of = device_lookup_now_();
    auto started = std::chrono::steady_clock::now();
    // By reference: the locals outlive the await, and g++ 12 may destroy a by-value capture of
    // a temporary lambda twice across co_await (the codebase's calls all capture [&]).
    auto written = co_await files_->run(
        [&] { return write_day_file(store_.punches(), directory, day, device_of, stopping_); });
    if (written.run) {
        auto run = std::move(*written.run);
        run.name = name;
        run.scheduled = scheduled;
        // The hook first: should recording fail after it, the run is retried and its event
        // written again (at least once), never recorded without its event.
        auto recorded = co_await writer_.run([&](write_tx& tx) -> storage_status {
            if (on_completed_) {
                if (auto hooked = on_completed_(tx, run); !hooked) {
                    return hooked;
                }
            }
            return tx.exports().record_export_run(run);
        });
        if (recorded) {
            outcome.run = std::move(run);
        } else {
            outcome.error = export_error::storage;
            outcome.message =
                fmt::format("export {}, {}: {} was written but recording it failed: {}", name,
                            day_text(day), run.file, recorded.error.message);
        }
    } else {
        outcome.error = written.cancelled        ? export_error::stopping
                        : written.storage_failed ? export_error::storage
                                                 : export_error::file;
        outcome.message = fmt::format("export {}, {}: {}", name, day_text(day), written.error);
    }
    note_result(name, day, outcome, scheduled, std::chrono::steady_clock::now() - started);
    co_return outcome;
}

void export_service::note_result(const std::string& name, local_days day,
                                 const export_outcome& outcome, bool scheduled,
                                 std::chrono::steady_clock::duration took)
{
    auto trigger = scheduled ? "scheduled" : "on demand";
    if (outcome.run) {
        const auto& run = *outcome.run;
        {
            std::lock_guard lock{mutex_};
            auto& j = jobs_.find(name)->second;
            j.last_run = run;
            j.last_error.clear();
            if (scheduled && (!j.last_completed || *j.last_completed < day)) {
                j.last_completed = day;
            }
        }
        stats_.export_run(name, true, run.finished_at);
        log_.event("export",
                   fmt::format("Export {}: wrote {} for {} ({} rows, {} bytes, {:.2f} s, {})", name,
                               escape_for_log(run.file), day_text(day), run.rows, run.bytes,
                               std::chrono::duration<double>(took).count(), trigger),
                   {{"export", name},
                    {"day", day_text(day)},
                    {"file", run.file},
                    {"rows", std::to_string(run.rows)},
                    {"bytes", std::to_string(run.bytes)},
                    {"trigger", trigger}});
        return;
    }
    if (outcome.error == export_error::stopping) {
        log_.event("export", fmt::format("Export {} of {} abandoned ({}): {}", name, day_text(day),
                                         trigger, escape_for_log(outcome.message)));
        return;
    }
    {
        std::lock_guard lock{mutex_};
        auto& j = jobs_.find(name)->second;
        j.last_error = outcome.message;
        if (scheduled) {
            j.retry_after = now_seconds() + retry_delay;
        }
    }
    stats_.export_run(name, false, clock::now());
    log_.event("export",
               fmt::format("Export {} of {} failed ({}{}): {}", name, day_text(day), trigger,
                           scheduled ? ", tried again in 60 s" : "",
                           escape_for_log(outcome.message)),
               {{"export", name}, {"day", day_text(day)}, {"trigger", trigger}});
}

net::awaitable<void> export_service::run_due(const std::string& name)
{
    auto now = now_seconds();
    std::vector<local_days> due;
    std::optional<std::pair<local_days, local_days>> skipped;
    {
        std::lock_guard lock{mutex_};
        auto& j = jobs_.find(name)->second;
        if (now < j.retry_after) {
            co_return;
        }
        due = export_due_days(j.last_completed, now, j.settings.at, zone_);
        if (j.last_completed && !due.empty() && *j.last_completed + days{1} < due.front() &&
            !j.skip_logged) {
            j.skip_logged = true;
            skipped.emplace(*j.last_completed + days{1}, due.front() - days{1});
        }
    }
    if (skipped) {
        log_.event("export",
                   fmt::format("Export {}: the missed days {} to {} are older than the {}-day "
                               "catch-up window and are not written; run them on demand (POST "
                               "/exports/{}/run)",
                               name, day_text(skipped->first), day_text(skipped->second),
                               export_catch_up_days, name));
    }
    for (auto day : due) {
        if (stopping_) {
            co_return;
        }
        auto outcome = co_await run_day(name, day, true);
        if (!outcome.run) {
            co_return; // retried after retry_delay, from this day on
        }
    }
}

std::chrono::milliseconds export_service::next_wake() const
{
    auto now_precise = clock::now();
    auto now = std::chrono::floor<std::chrono::seconds>(now_precise);
    auto wake = now_precise + longest_sleep;
    {
        std::lock_guard lock{mutex_};
        for (const auto& [name, j] : jobs_) {
            auto next = next_export(j.last_completed, now, j.settings.at, zone_);
            // Already due: it failed and waits for its retry.
            auto at = next.due_at <= now ? j.retry_after : next.due_at;
            wake = std::min<clock::time_point>(wake, at);
        }
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now_precise);
    return std::clamp<std::chrono::milliseconds>(wait, std::chrono::milliseconds{10},
                                                 longest_sleep);
}

net::awaitable<void> export_service::run_schedule()
{
    std::vector<std::string> names;
    {
        std::lock_guard lock{mutex_};
        for (const auto& [name, j] : jobs_) {
            names.push_back(name);
        }
    }
    if (names.empty()) {
        co_return;
    }
    net::steady_timer timer{co_await net::this_coro::executor};
    while (!stopping_) {
        for (const auto& name : names) {
            co_await run_due(name);
        }
        timer.expires_after(next_wake());
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
}

void export_service::stop()
{
    if (!stopping_.exchange(true)) {
        files_->join();
    }
}

} // namespace adms::server
