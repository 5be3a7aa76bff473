#pragma once

#include "server/storage/clock_store.hpp"
#include "server/storage/command_store.hpp"
#include "server/storage/device_store.hpp"
#include "server/storage/export_store.hpp"
#include "server/storage/outbox_store.hpp"
#include "server/storage/person_store.hpp"
#include "server/storage/provision_store.hpp"
#include "server/storage/punch_store.hpp"
#include "server/storage/result.hpp"
#include "server/storage/upload_store.hpp"

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

// The durable store behind the server: devices, punches, everything else a device uploads, the
// per-device command queue, the drift watch's history and the payroll exports' state. Plain
// interfaces and value types, one header per concern (no SQLite here: these headers are widely
// included); server/storage/sqlite/ is the implementation, and every backend passes the
// contract suite in tests/unit/server/storage/contract/.
//
// The shape: reads go through the stores a `database` hands out (devices(), punches(), ...).
// Writes exist only on the writer views of a `write_tx`, and only write_batch makes one: what one
// batch writes commits together (one commit, one fsync), so "these rows commit together" is in
// the types, and a write outside a transaction does not compile.
//
// Every call is synchronous and blocking: the server makes its writes on one writer thread
// (commit_queue) and its reads on a pool, both off the I/O threads. Expected failures come back
// as storage_error values, never as exceptions (a command_chooser that throws is the exception:
// its claim is undone and the exception propagates). Each read call sees one committed snapshot.
namespace adms::server {

// The write transaction of one batch, handed to write_batch's `work`: a writer view per store.
// Each writer call is a savepoint of the transaction: all of the call is stored or none, and a
// call that fails is undone alone and returns its error while the batch's other calls stand.
// Thread safety: use it only on the thread running `work`, only while `work` runs.
class write_tx {
  public:
    write_tx(const write_tx&) = delete;
    write_tx& operator=(const write_tx&) = delete;

    virtual device_writer& devices() = 0;
    virtual punch_writer& punches() = 0;
    virtual upload_writer& uploads() = 0;
    virtual command_writer& commands() = 0;
    virtual clock_writer& clocks() = 0;
    virtual outbox_writer& outbox() = 0;
    // Runs `work`, whose writer calls then stand or fall together: when `work` returns an error
    // (or one of its calls fails and it passes the error on), everything it wrote is undone and
    // the error is returned, while the batch's other calls stand. For data and the events that
    // announce it: a punch is never stored without its event, nor an event without its punch.
    virtual storage_status atomic(const std::function<storage_status()>& work) = 0;
    virtual export_writer& exports() = 0;
    virtual person_writer& persons() = 0;
    virtual provision_writer& provisioning() = 0;
    // A small durable write: the batch's commit then fails as an upload's would while the disk is
    // full, read-only or locked. The server probes with it to notice recovery.
    virtual storage_status probe() = 0;

  protected:
    write_tx() = default;
    ~write_tx() = default;
};

// The database: the stores' read interfaces, and the write transactions.
// Thread safety: any thread may call, concurrently; write batches run one at a time.
class database {
  public:
    virtual ~database() = default;

    virtual device_store& devices() = 0;
    virtual punch_store& punches() = 0;
    virtual command_store& commands() = 0;
    virtual clock_store& clocks() = 0;
    virtual outbox_store& outbox() = 0;
    virtual export_store& exports() = 0;
    virtual person_store& persons() = 0;
    virtual provision_store& provisioning() = 0;

    // Group commit: runs `work` inside one transaction committed once at the end, so the writes
    // of many requests share one commit (one fsync). Each writer call `work` makes through `tx`
    // is a savepoint: a call that fails is undone alone and returns its error, the others stand.
    // The result is the commit's: when it is an error, nothing `work` wrote is stored, whatever
    // its calls returned (and `work` may not have run at all, e.g. when the write lock could not
    // be taken). Should `work` throw, nothing is stored and the exception propagates.
    virtual storage_status write_batch(const std::function<void(write_tx& tx)>& work) = 0;

    // Runs `f(tx)` in a batch of its own and returns its result, or the commit's error when the
    // commit failed. For writes made outside the commit queue (start-up, stop, tools, tests).
    template <class F>
    std::invoke_result_t<F&, write_tx&> write(F f)
    {
        std::optional<std::invoke_result_t<F&, write_tx&>> result;
        auto committed = write_batch([&](write_tx& tx) { result.emplace(f(tx)); });
        if (!committed) {
            return committed.error;
        }
        return std::move(*result);
    }

    // Answers when the database can be read (a trivial read): for /healthz.
    virtual storage_status check() = 0;
    // A small durable write in a batch of its own (write_tx::probe).
    storage_status probe()
    {
        return write([](write_tx& tx) { return tx.probe(); });
    }

    // Closes the database; later calls return an error. Safe to call twice.
    virtual storage_status close() = 0;
};

} // namespace adms::server
