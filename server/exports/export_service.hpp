#pragma once

#include "server/config/export_settings.hpp"
#include "server/records/punch_format.hpp"
#include "server/storage/database.hpp"
#include "tz/zone.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

class blocking_pool;
class commit_queue;
class logger;
class metrics;

// Called inside the commit that records a written export file, with the run being recorded: what
// it writes through the transaction (the export.completed event) commits with the run, or not
// at all. An error value leaves the run unrecorded (it is retried; the event may then be written
// twice, never lost). The composition root passes it; none by default.
using export_completed_hook = std::function<storage_status(write_tx&, const export_run&)>;

// Why an export did not write its file.
enum class export_error {
    none,
    unknown_export, // no [exports.<name>] table has that name
    storage,        // reading the punches or recording the run failed
    file,           // the directory or file could not be written
    stopping,       // the server is stopping (a scheduled day is written at the next start)
};

// What one run did: the file written, or why not (a message naming the export and the file).
struct export_outcome {
    std::optional<export_run> run;
    export_error error = export_error::none;
    std::string message;
};

// One export as GET /exports shows it.
struct export_view {
    std::string name;
    export_settings settings;
    std::optional<std::chrono::local_days> last_completed_day;
    std::optional<export_run> last_run;
    std::chrono::local_days next_day{};  // the day the next scheduled file covers
    std::chrono::sys_seconds next_run{}; // when it is due (in the past while it is late)
    std::string last_error;              // the last failed run's message; empty after a success
};

// The scheduled payroll exports ([exports.<name>]): every day at `at` (the server's zone) the
// file of the previous day of the devices' wall clocks, with the rows of GET /punches.csv for
// that day; missed days written at the next start (export_schedule.hpp); runs on demand. Files
// are written by one thread of its own (never an I/O thread, never two files at once); each
// written file is recorded, with the hook's writes, in one commit.
// Thread safety: every member may be called from any thread; state is guarded by one mutex never
// held across co_await.
class export_service {
  public:
    // `device_lookup_now` gives each run the devices as punch rows show them at its start.
    export_service(export_table exports, tz::zone zone, database& store, commit_queue& writer,
                   std::function<device_lookup()> device_lookup_now, logger& log, metrics& stats,
                   export_completed_hook on_completed = {});
    ~export_service();
    export_service(const export_service&) = delete;
    export_service& operator=(const export_service&) = delete;

    // At start, before anything runs: reads each export's stored state and removes the
    // temporary files a crash left in the export directories (logged). An error reading the
    // state is returned (the server cannot know what is due).
    storage_status load();

    // The schedule: writes what is due now (the missed days first, oldest first), then sleeps
    // until the next file is due or a minute at most (so a changed system clock is noticed);
    // a failed run is retried a minute later. Runs until the server stops.
    boost::asio::awaitable<void> run_schedule();

    // Writes the file of `day` for export `name` now, whatever the schedule did (the file is
    // replaced atomically). It does not move the schedule.
    boost::asio::awaitable<export_outcome> run_now(std::string name, std::chrono::local_days day);

    // Every configured export, ordered by name, with its schedule.
    std::vector<export_view> list() const;
    // Whether an export of that name is configured.
    bool has_export(std::string_view name) const;
    // The zone the schedule runs in (the server's).
    const tz::zone& zone() const { return zone_; }

    // Stops: a file being written is abandoned (its temporary removed) and the writing thread
    // joined. Call once no run_now or run_schedule is awaited any more, or they never resume.
    void stop();

  private:
    // The state of one export, guarded by mutex_.
    struct job {
        export_settings settings;
        std::optional<std::chrono::local_days> last_completed;
        std::optional<export_run> last_run;
        std::string last_error;
        std::chrono::sys_seconds retry_after{};
        bool skip_logged = false;
    };

    boost::asio::awaitable<export_outcome> run_day(const std::string& name,
                                                   std::chrono::local_days day, bool scheduled);
    // Runs the days due for `name` now, oldest first; stops at a failure (retried later).
    boost::asio::awaitable<void> run_due(const std::string& name);
    // How long the schedule may sleep: until the next file is due, at most a minute.
    std::chrono::milliseconds next_wake() const;
    // Records a run's outcome in the job, the log (one line) and the metrics.
    void note_result(const std::string& name, std::chrono::local_days day,
                     const export_outcome& outcome, bool scheduled,
                     std::chrono::steady_clock::duration took);

    tz::zone zone_;
    database& store_;
    commit_queue& writer_;
    std::function<device_lookup()> device_lookup_now_;
    logger& log_;
    metrics& stats_;
    export_completed_hook on_completed_;
    std::unique_ptr<blocking_pool> files_; // one thread: the file writes
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::map<std::string, job, std::less<>> jobs_; // guarded by mutex_ (the keys never change)
};

} // namespace adms::server
