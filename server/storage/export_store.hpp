#pragma once

#include "server/storage/result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

// One payroll export file written: which export, which local day, where, and how big.
struct export_run {
    std::string name;              // the [exports.<name>] table
    std::chrono::local_days day{}; // the devices' wall-clock day it covers
    std::string file;              // the final path, e.g. "/srv/payroll/punches-2026-11-30.csv"
    std::uint64_t rows = 0;        // punch rows (the header not counted)
    std::uint64_t bytes = 0;       // the file's size
    instant finished_at{};         // when the file was in place (renamed and synced)
    bool scheduled = false;        // written by the schedule; false: on demand
    friend bool operator==(const export_run&, const export_run&) = default;
};

// What is stored about one export.
struct export_state {
    std::string name;
    // The last day the schedule wrote (scheduled runs only): the schedule resumes after it.
    std::optional<std::chrono::local_days> last_completed_day;
    // The latest file written, scheduled or on demand.
    std::optional<export_run> last_run;
    friend bool operator==(const export_state&, const export_state&) = default;
};

// Reads of the exports' state (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class export_store {
  public:
    // Every export with a stored state, ordered by name (an export removed from the config file
    // keeps its row).
    virtual storage_result<std::vector<export_state>> list_export_states() = 0;

  protected:
    ~export_store() = default;
};

// Writes of the exports' state; reached only through a write_tx (database.hpp).
class export_writer {
  public:
    // Records a file written: it becomes the export's last run and, when scheduled, moves the
    // export's last completed day forward to its day (never back: an older day re-run leaves it).
    // Days are years 0000 to 9999.
    virtual storage_status record_export_run(const export_run& run) = 0;

  protected:
    ~export_writer() = default;
};

} // namespace adms::server
