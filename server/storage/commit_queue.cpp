#include "server/storage/commit_queue.hpp"

#include <utility>

namespace adms::server {

commit_queue::commit_queue(database& db, std::size_t max_batch)
    : db_{db}, max_batch_{max_batch == 0 ? 1 : max_batch}, thread_{[this] { loop(); }}
{
}

commit_queue::~commit_queue()
{
    stop();
}

void commit_queue::stop()
{
    {
        std::lock_guard lock{mutex_};
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
    }
}

std::uint64_t commit_queue::batches() const
{
    std::lock_guard lock{mutex_};
    return batches_;
}

std::uint64_t commit_queue::calls() const
{
    std::lock_guard lock{mutex_};
    return calls_;
}

void commit_queue::submit(std::unique_ptr<job> j)
{
    {
        std::unique_lock lock{mutex_};
        if (!stopping_) {
            queue_.push_back(std::move(j));
            lock.unlock();
            wake_.notify_one();
            return;
        }
    }
    storage_error stopped{"the writer has stopped"};
    j->complete(&stopped);
}

void commit_queue::loop()
{
    std::vector<std::unique_ptr<job>> batch;
    for (;;) {
        {
            std::unique_lock lock{mutex_};
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return; // stopping, and everything queued has been committed
            }
            // Everything that arrived while the previous batch committed rides this one.
            if (queue_.size() <= max_batch_) {
                batch.swap(queue_);
            } else {
                auto split = queue_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
                batch.assign(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(split));
                queue_.erase(queue_.begin(), split);
            }
        }
        auto committed = db_.write_batch([&](write_tx& tx) {
            for (auto& j : batch) {
                j->execute(tx);
            }
        });
        {
            // Counted before anyone resumes, so a caller sees its own batch counted.
            std::lock_guard lock{mutex_};
            ++batches_;
            calls_ += batch.size();
        }
        for (auto& j : batch) {
            j->complete(committed ? nullptr : &committed.error);
        }
        batch.clear();
    }
}

} // namespace adms::server
