#include "server/storage/sqlite/outbox_store.hpp"

#include "server/storage/sqlite/sqlite_db.hpp"

namespace adms::server {

using namespace sqlite;

namespace {

constexpr std::string_view delivery_columns =
    "d.endpoint, e.seq, e.id, e.type, e.lane, e.created_at_ms, e.body, d.state, d.attempts, "
    "d.next_attempt_ms, d.last_status, d.last_error, d.delivered_at_ms";

delivery_state state_of(std::int64_t value)
{
    switch (value) {
    case 1:
        return delivery_state::delivered;
    case 2:
        return delivery_state::failed;
    default:
        return delivery_state::pending;
    }
}

std::int64_t code_of(delivery_state state)
{
    switch (state) {
    case delivery_state::pending:
        return 0;
    case delivery_state::delivered:
        return 1;
    case delivery_state::failed:
        return 2;
    }
    return 0;
}

webhook_delivery read_delivery(const statement& s)
{
    webhook_delivery d;
    d.endpoint = s.text(0);
    d.event.seq = s.integer(1);
    d.event.id = s.text(2);
    d.event.type = s.text(3);
    d.event.lane = s.text(4);
    d.event.created_at = s.time(5);
    d.event.body = s.text(6);
    d.state = state_of(s.integer(7));
    d.attempts = s.small_integer(8);
    d.next_attempt = s.time(9);
    d.last_status = s.small_integer(10);
    d.last_error = s.text(11);
    d.delivered_at = s.optional_time(12);
    return d;
}

} // namespace

storage_status
sqlite_outbox_writer::append_events(std::span<outbox_event> events,
                                    std::span<const std::vector<std::string>> endpoints)
{
    return run_on<std::monostate>(db_, "append_events", [&](connection& db) {
        if (events.size() != endpoints.size()) {
            throw sqlite_failure{"append_events: one endpoint list per event"};
        }
        savepoint tx{db};
        statement insert{db, R"sql(
INSERT INTO outbox_event (id, type, lane, created_at_ms, body) VALUES (?, ?, ?, ?, ?)
)sql"};
        statement fan_out{db, R"sql(
INSERT INTO webhook_delivery (endpoint, seq, lane, state, next_attempt_ms) VALUES (?, ?, ?, 0, ?)
)sql"};
        std::vector<std::int64_t> seqs;
        seqs.reserve(events.size());
        for (std::size_t i = 0; i < events.size(); ++i) {
            const auto& event = events[i];
            insert.bind(event.id, event.type, event.lane, event.created_at, event.body).run();
            auto seq = sqlite3_last_insert_rowid(db.handle());
            for (const auto& endpoint : endpoints[i]) {
                fan_out.bind(endpoint, seq, event.lane, event.created_at).run();
            }
            seqs.push_back(seq);
        }
        tx.release();
        for (std::size_t i = 0; i < events.size(); ++i) {
            events[i].seq = seqs[i];
        }
        return std::monostate{};
    });
}

storage_status sqlite_outbox_writer::record_attempt(std::string_view endpoint, std::int64_t seq,
                                                    const attempt_record& record)
{
    return run_on<std::monostate>(db_, "record_attempt", [&](connection& db) {
        savepoint tx{db};
        statement update{db, R"sql(
UPDATE webhook_delivery SET attempts = attempts + 1, state = ?3, next_attempt_ms = ?4,
    last_status = ?5, last_error = ?6,
    delivered_at_ms = CASE WHEN ?3 = 1 THEN ?7 ELSE delivered_at_ms END
WHERE endpoint = ?1 AND seq = ?2
RETURNING attempts
)sql"};
        const auto& a = record.attempt;
        update.bind(endpoint, seq, code_of(record.state), record.next_attempt, a.status, a.error,
                    a.at);
        if (!update.step()) {
            throw sqlite_failure{"no such delivery"};
        }
        auto number = update.integer(0);
        update.run();
        statement log{db, R"sql(
INSERT INTO webhook_attempt (endpoint, seq, number, at_ms, status, error, duration_ms, response)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
)sql"};
        log.bind(endpoint, seq, number, a.at, a.status, a.error,
                 static_cast<std::int64_t>(a.duration.count()), a.response)
            .run();
        tx.release();
        return std::monostate{};
    });
}

storage_result<std::size_t> sqlite_outbox_writer::requeue(const requeue_range& range, instant due)
{
    return run_on<std::size_t>(db_, "requeue", [&](connection& db) {
        savepoint tx{db};
        statement s{db, R"sql(
UPDATE webhook_delivery SET state = 0, next_attempt_ms = ?1
WHERE endpoint = ?2 AND seq >= ?3 AND (?4 IS NULL OR seq <= ?4)
  AND (state = 0 OR (state = 1 AND ?5) OR (state = 2 AND ?6))
  AND (?7 IS NULL OR seq IN (SELECT seq FROM outbox_event WHERE created_at_ms >= ?7))
  AND (?8 IS NULL OR seq IN (SELECT seq FROM outbox_event WHERE created_at_ms < ?8))
)sql"};
        s.bind(due, range.endpoint, range.from_seq, range.to_seq, range.delivered, range.failed,
               range.created_from, range.created_to)
            .run();
        auto changed = static_cast<std::size_t>(sqlite3_changes(db.handle()));
        tx.release();
        return changed;
    });
}

storage_status sqlite_outbox_writer::save_endpoint(const webhook_endpoint_row& endpoint)
{
    return run_on<std::monostate>(db_, "save_endpoint", [&](connection& db) {
        savepoint tx{db};
        statement s{db, R"sql(
INSERT INTO webhook_endpoint (name, definition, enabled, disabled_reason, source, created_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (name) DO UPDATE SET definition = ?2, enabled = ?3, disabled_reason = ?4,
    source = ?5
)sql"};
        s.bind(endpoint.name, endpoint.definition, endpoint.enabled, endpoint.disabled_reason,
               endpoint.source, endpoint.created_at)
            .run();
        tx.release();
        return std::monostate{};
    });
}

storage_result<bool> sqlite_outbox_writer::delete_endpoint(std::string_view name)
{
    return run_on<bool>(db_, "delete_endpoint", [&](connection& db) {
        savepoint tx{db};
        statement s{db, "DELETE FROM webhook_endpoint WHERE name = ?"};
        s.bind(name).run();
        bool deleted = sqlite3_changes(db.handle()) > 0;
        // Its deliveries went with it (ON DELETE CASCADE); events nobody else wants go too.
        statement orphans{db, R"sql(
DELETE FROM outbox_event
WHERE NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.seq = outbox_event.seq)
)sql"};
        if (deleted) {
            orphans.run();
        }
        tx.release();
        return deleted;
    });
}

storage_result<outbox_writer::pruned_count> sqlite_outbox_writer::prune(instant before,
                                                                        std::size_t limit)
{
    return run_on<pruned_count>(db_, "prune_outbox", [&](connection& db) {
        savepoint tx{db};
        // Both through their age indexes (schema 6): a round reads what it deletes, not the
        // rows kept.
        statement gone{db, R"sql(
DELETE FROM webhook_delivery
WHERE (endpoint, seq) IN (SELECT endpoint, seq FROM webhook_delivery INDEXED BY
                          webhook_delivery_by_age
                          WHERE state = 1 AND delivered_at_ms < ?
                          ORDER BY delivered_at_ms LIMIT ?)
)sql"};
        gone.bind(before, static_cast<std::int64_t>(limit)).run();
        pruned_count count;
        count.deliveries = static_cast<std::size_t>(sqlite3_changes(db.handle()));
        statement orphans{db, R"sql(
DELETE FROM outbox_event
WHERE seq IN (SELECT seq FROM outbox_event INDEXED BY outbox_event_by_age
              WHERE created_at_ms < ?
                AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.seq = outbox_event.seq)
              ORDER BY created_at_ms LIMIT ?)
)sql"};
        orphans.bind(before, static_cast<std::int64_t>(limit)).run();
        count.events = static_cast<std::size_t>(sqlite3_changes(db.handle()));
        tx.release();
        return count;
    });
}

storage_result<std::vector<webhook_endpoint_row>> sqlite_outbox_store::endpoints()
{
    return reader_.run<std::vector<webhook_endpoint_row>>("endpoints", [](connection& db) {
        statement s{db, R"sql(
SELECT name, definition, enabled, disabled_reason, source, created_at_ms FROM webhook_endpoint
ORDER BY name
)sql"};
        std::vector<webhook_endpoint_row> out;
        while (s.step()) {
            out.push_back(
                {s.text(0), s.text(1), s.integer(2) != 0, s.text(3), s.text(4), s.time(5)});
        }
        return out;
    });
}

storage_result<std::vector<webhook_delivery>>
sqlite_outbox_store::list_deliveries(const delivery_filter& filter)
{
    return reader_.run<std::vector<webhook_delivery>>("list_deliveries", [&](connection& db) {
        std::optional<std::int64_t> state;
        if (filter.state) {
            state = code_of(*filter.state);
        }
        // The relay reads a lane's head (state and lane) for every delivery. Left to itself,
        // SQLite (no statistics) walks the primary key in seq order to avoid a sort, through
        // every delivered row the endpoint keeps (retention): 200,000 of them made each read
        // take 40-60 ms. So the conditions that are not asked are left out (an `?3 IS NULL OR`
        // form could use no index) and the index is named.
        std::string_view index = !filter.state ? ""
                                 : filter.lane ? " INDEXED BY webhook_delivery_by_lane"
                                               : " INDEXED BY webhook_delivery_by_state";
        statement s{db,
                    fmt::format(R"sql(
SELECT {} FROM webhook_delivery d{} JOIN outbox_event e ON e.seq = d.seq
WHERE d.endpoint = ?1 AND d.seq > ?2{}{}
ORDER BY d.seq LIMIT ?5
)sql",
                                delivery_columns, index, filter.state ? " AND d.state = ?3" : "",
                                filter.lane ? " AND d.lane = ?4" : "")};
        s.bind(filter.endpoint, filter.after_seq, state, filter.lane, clamp_limit(filter.limit));
        std::vector<webhook_delivery> out;
        while (s.step()) {
            out.push_back(read_delivery(s));
        }
        return out;
    });
}

storage_result<std::vector<outbox_store::lane_head>>
sqlite_outbox_store::pending_lanes(std::string_view endpoint)
{
    return reader_.run<std::vector<lane_head>>("pending_lanes", [&](connection& db) {
        // One index seek per lane on webhook_delivery_by_lane (SQLite's min() optimisation for
        // GROUP BY on an index prefix).
        statement s{db, R"sql(
SELECT lane, min(seq) AS head FROM webhook_delivery WHERE endpoint = ? AND state = 0
GROUP BY lane ORDER BY head
)sql"};
        s.bind(endpoint);
        std::vector<lane_head> out;
        while (s.step()) {
            out.push_back({s.text(0), s.integer(1)});
        }
        return out;
    });
}

storage_result<std::optional<webhook_delivery>>
sqlite_outbox_store::find_delivery(std::string_view endpoint, std::string_view event_id)
{
    return reader_.run<std::optional<webhook_delivery>>("find_delivery", [&](connection& db) {
        statement s{db, fmt::format(R"sql(
SELECT {} FROM webhook_delivery d JOIN outbox_event e ON e.seq = d.seq
WHERE d.endpoint = ? AND e.id = ?
)sql",
                                    delivery_columns)};
        s.bind(endpoint, event_id);
        std::optional<webhook_delivery> out;
        if (s.step()) {
            out = read_delivery(s);
        }
        return out;
    });
}

storage_result<std::vector<delivery_attempt>>
sqlite_outbox_store::attempts(std::string_view endpoint, std::int64_t seq)
{
    return reader_.run<std::vector<delivery_attempt>>("attempts", [&](connection& db) {
        statement s{db, R"sql(
SELECT number, at_ms, status, error, duration_ms, response FROM webhook_attempt
WHERE endpoint = ? AND seq = ? ORDER BY number
)sql"};
        s.bind(endpoint, seq);
        std::vector<delivery_attempt> out;
        while (s.step()) {
            out.push_back({s.small_integer(0), s.time(1), s.small_integer(2), s.text(3),
                           std::chrono::milliseconds{s.integer(4)}, s.text(5)});
        }
        return out;
    });
}

storage_result<delivery_summary> sqlite_outbox_store::summary(std::string_view endpoint)
{
    return reader_.run<delivery_summary>("delivery_summary", [&](connection& db) {
        statement s{db, R"sql(
SELECT (SELECT count(*) FROM webhook_delivery WHERE endpoint = ?1 AND state = 0),
       (SELECT count(*) FROM webhook_delivery WHERE endpoint = ?1 AND state = 2),
       (SELECT e.created_at_ms FROM webhook_delivery d JOIN outbox_event e ON e.seq = d.seq
        WHERE d.endpoint = ?1 AND d.state = 0 ORDER BY d.seq LIMIT 1)
)sql"};
        s.bind(endpoint);
        delivery_summary out;
        if (s.step()) {
            out.pending = static_cast<std::size_t>(s.integer(0));
            out.failed = static_cast<std::size_t>(s.integer(1));
            out.oldest_pending = s.optional_time(2);
        }
        return out;
    });
}

} // namespace adms::server
