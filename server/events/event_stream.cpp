#include "server/events/event_stream.hpp"

#include "server/records/punch_format.hpp"
#include "server/storage/commit_queue.hpp"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <openssl/rand.h>
#include <stdexcept>

namespace adms::server {

std::string new_event_id(instant now)
{
    // A ULID: 48 bits of Unix milliseconds, then 80 random bits, big-endian, as 26 base32
    // characters (the first carries the top 3 bits of the 130).
    std::array<unsigned char, 16> bytes{};
    auto ms = static_cast<std::uint64_t>(now.time_since_epoch().count());
    for (int i = 0; i < 6; ++i) {
        bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
    }
    if (RAND_bytes(bytes.data() + 6, 10) != 1) {
        // Only when the system's random source is broken: no id is better than a guessable one.
        throw std::runtime_error{"event id: OpenSSL RAND_bytes failed"};
    }
    constexpr std::string_view alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    std::string id = "evt_";
    id.reserve(4 + 26);
    // 130 bits read 5 at a time; the 2 bits above the 128 are zero.
    for (int chunk = 25; chunk >= 0; --chunk) {
        int value = 0;
        for (int bit = 4; bit >= 0; --bit) {
            int position = chunk * 5 + bit; // from the least significant bit of the 128
            if (position < 128) {
                auto byte = bytes[static_cast<std::size_t>(15 - position / 8)];
                value |= ((byte >> (position % 8)) & 1) << bit;
            }
        }
        id += alphabet[static_cast<std::size_t>(value)];
    }
    return id;
}

std::string event_envelope(std::string_view id, std::string_view type, instant timestamp,
                           const boost::json::object& data)
{
    auto seconds = std::chrono::floor<std::chrono::seconds>(timestamp);
    auto utc = format_iso_utc(seconds); // "…T05:00:06Z"
    utc.insert(utc.size() - 1, fmt::format(".{:03}", (timestamp - seconds).count()));
    boost::json::object body;
    body["id"] = id;
    body["type"] = type;
    body["timestamp"] = utc;
    body["data"] = data;
    return boost::json::serialize(body);
}

storage_status event_stream::stage(write_tx& tx, std::span<const event> events,
                                   std::vector<published_event>& staged) const
{
    auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    auto first = staged.size();
    // The events some endpoint wants go to the outbox in one call (one savepoint).
    std::vector<outbox_event> rows;
    std::vector<std::vector<std::string>> endpoints;
    for (const auto& e : events) {
        published_event p;
        p.row.id = new_event_id(now);
        p.row.type = e.type;
        p.row.lane = e.serial_number;
        p.row.created_at = now;
        p.row.body = event_envelope(p.row.id, e.type, now, e.data);
        if (routes_ != nullptr) {
            p.endpoints = routes_->endpoints_for(e.type, e.serial_number);
        }
        if (!p.endpoints.empty()) {
            rows.push_back(p.row);
            endpoints.push_back(p.endpoints);
        }
        staged.push_back(std::move(p));
    }
    if (rows.empty()) {
        return std::monostate{};
    }
    if (auto appended = tx.outbox().append_events(rows, endpoints); !appended) {
        staged.resize(first);
        return appended;
    }
    // The outbox numbered the rows: the staged events carry their seq, in the same order.
    std::size_t next = 0;
    for (auto i = first; i < staged.size(); ++i) {
        if (!staged[i].endpoints.empty()) {
            staged[i].row.seq = rows[next++].seq;
        }
    }
    return std::monostate{};
}

void event_stream::publish(std::span<const published_event> staged) const
{
    if (staged.empty()) {
        return;
    }
    for (auto* listener : listeners_) {
        listener->on_published(staged);
    }
}

net::awaitable<storage_status> event_stream::record(commit_queue& writer,
                                                    std::vector<event> events) const
{
    std::vector<published_event> staged;
    auto committed = co_await writer.run(
        [&](write_tx& tx) { return tx.atomic([&] { return stage(tx, events, staged); }); });
    if (committed) {
        publish(staged);
    }
    co_return committed;
}

} // namespace adms::server
