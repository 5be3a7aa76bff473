#include "server/storage/sqlite/command_store.hpp"

#include "protocol/command.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

#include <charconv>
#include <map>
#include <set>

namespace adms::server {

using namespace sqlite;

namespace {

// The id of a command as the device echoes it: canonical decimal only ("007" is not "7").
std::optional<std::int64_t> parse_command_id(std::string_view id)
{
    if (id.empty() || id.size() > 16 || (id.size() > 1 && id.front() == '0')) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
    if (ec != std::errc{} || end != id.data() + id.size() || value <= 0) {
        return std::nullopt;
    }
    return value;
}

std::string join_key_values(const std::vector<protocol::key_value>& items)
{
    std::string out;
    for (const auto& kv : items) {
        if (!out.empty()) {
            out += '\n';
        }
        out += kv.key;
        out += '=';
        out += kv.value;
    }
    return out;
}

std::vector<protocol::key_value> split_key_values(std::string_view text)
{
    std::vector<protocol::key_value> out;
    while (!text.empty()) {
        auto end = text.find('\n');
        auto line = text.substr(0, end);
        auto eq = line.find('=');
        if (eq == std::string_view::npos) {
            out.push_back({std::string{line}, {}});
        } else {
            out.push_back({std::string{line.substr(0, eq)}, std::string{line.substr(eq + 1)}});
        }
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
    return out;
}

std::string_view match_name(result_match m)
{
    switch (m) {
    case result_match::matched:
        return "matched";
    case result_match::duplicate:
        return "duplicate";
    case result_match::unmatched:
        return "unmatched";
    }
    return "unmatched";
}

result_match parse_match(std::string_view text)
{
    if (text == "matched") {
        return result_match::matched;
    }
    return text == "duplicate" ? result_match::duplicate : result_match::unmatched;
}

constexpr std::string_view command_columns =
    "id, serial_number, text, kind, state, created_at_ms, sent_at_ms, attempts, result_code, "
    "result_command, result_content, result_info, result_at_ms";

queued_command read_command(const statement& s)
{
    queued_command c;
    c.id = std::to_string(s.integer(0));
    c.serial_number = s.text(1);
    c.text = s.text(2);
    c.kind = s.text(3);
    // The CHECK constraint allows only known states.
    c.state = parse_command_state(s.text(4)).value_or(command_state::failed);
    c.created_at = s.time(5);
    c.sent_at = s.optional_time(6);
    c.attempts = s.small_integer(7);
    c.return_code = s.optional_small_integer(8);
    c.result_command = s.text(9);
    c.result_content = s.text(10);
    c.result_info = s.text(11);
    c.result_at = s.optional_time(12);
    return c;
}

} // namespace

storage_result<std::string> sqlite_command_writer::enqueue_command(std::string_view serial_number,
                                                                   std::string_view text,
                                                                   std::string_view kind,
                                                                   instant created_at)
{
    return run_on<std::string>(db_, "enqueue_command", [&](connection& db) {
        savepoint tx{db};
        statement s{db, "INSERT INTO command (serial_number, text, kind, state, created_at_ms) "
                        "VALUES (?, ?, ?, 'queued', ?)"};
        s.bind(serial_number, text, kind, created_at).run();
        auto id = sqlite3_last_insert_rowid(db.handle());
        tx.release();
        return std::to_string(id);
    });
}

storage_result<enqueued_command> sqlite_command_writer::enqueue_command_unless_pending(
    std::string_view serial_number, std::string_view text, std::string_view kind,
    std::string_view kind_prefix, instant created_at)
{
    return run_on<enqueued_command>(db_, "enqueue_command_unless_pending", [&](connection& db) {
        // BEGIN IMMEDIATE takes the write lock before the look-up, so no other connection can
        // queue one in between. The prefix is compared as bytes: no LIKE, no wildcards.
        savepoint tx{db};
        statement pending{db, R"sql(
SELECT id FROM command
WHERE serial_number = ?1 AND state IN ('queued', 'sent')
  AND substr(CAST(kind AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)
ORDER BY id LIMIT 1
)sql"};
        pending.bind(serial_number, kind_prefix);
        if (pending.step()) {
            return enqueued_command{std::to_string(pending.integer(0)), false};
        }
        statement s{db, "INSERT INTO command (serial_number, text, kind, state, created_at_ms) "
                        "VALUES (?, ?, ?, 'queued', ?)"};
        s.bind(serial_number, text, kind, created_at).run();
        auto id = sqlite3_last_insert_rowid(db.handle());
        tx.release();
        return enqueued_command{std::to_string(id), true};
    });
}

storage_result<std::optional<queued_command>>
sqlite_command_store::find_command(std::string_view serial_number, std::string_view id)
{
    return reader_.run<std::optional<queued_command>>(
        "find_command", [&](connection& db) -> std::optional<queued_command> {
            auto number = parse_command_id(id);
            if (!number) {
                return std::nullopt; // not an id this storage hands out
            }
            statement s{db, fmt::format("SELECT {} FROM command WHERE id = ? AND serial_number = ?",
                                        command_columns)};
            s.bind(*number, serial_number);
            if (!s.step()) {
                return std::nullopt;
            }
            return read_command(s);
        });
}

storage_result<std::vector<queued_command>>
sqlite_command_writer::claim_commands(std::string_view serial_number, instant now,
                                      const resend_policy& policy, const command_chooser& choose)
{
    return run_on<std::vector<queued_command>>(db_, "claim_commands", [&](connection& db) {
        savepoint tx{db};
        const instant resend_before = now - policy.resend_after;
        statement expire{db, R"sql(
UPDATE command SET state = 'expired'
WHERE serial_number = ? AND state = 'sent' AND attempts >= ? AND sent_at_ms <= ?
)sql"};
        expire.bind(serial_number, policy.max_attempts, resend_before).run();

        std::vector<queued_command> sendable;
        {
            statement s{db, fmt::format(R"sql(
SELECT {} FROM command
WHERE serial_number = ?
  AND (state = 'queued' OR (state = 'sent' AND sent_at_ms <= ? AND attempts < ?))
ORDER BY id
)sql",
                                        command_columns)};
            s.bind(serial_number, resend_before, policy.max_attempts);
            while (s.step()) {
                sendable.push_back(read_command(s));
            }
        }
        std::vector<queued_command> claimed;
        if (sendable.empty()) {
            tx.release(); // the expiries
            return claimed;
        }
        auto choice = choose(sendable);

        std::map<std::string, queued_command*, std::less<>> offered;
        for (auto& c : sendable) {
            offered.emplace(c.id, &c);
        }
        statement mark_sent{db, "UPDATE command SET state = 'sent', sent_at_ms = ?, attempts = "
                                "attempts + 1 WHERE id = ?"};
        std::set<std::string, std::less<>> done;
        for (const auto& id : choice.send) {
            auto it = offered.find(id);
            if (it == offered.end() || !done.insert(id).second) {
                continue;
            }
            auto& c = *it->second;
            mark_sent.bind(now, parse_command_id(c.id).value()).run();
            c.state = command_state::sent;
            c.sent_at = now;
            ++c.attempts;
            claimed.push_back(c);
        }
        statement mark_unsendable{db, "UPDATE command SET state = 'unsendable' WHERE id = ?"};
        for (const auto& id : choice.unsendable) {
            auto it = offered.find(id);
            if (it == offered.end() || !done.insert(id).second) {
                continue;
            }
            mark_unsendable.bind(parse_command_id(it->second->id).value()).run();
        }
        tx.release();
        return claimed;
    });
}

storage_status sqlite_command_writer::set_command_text(std::string_view serial_number,
                                                       std::string_view id, std::string_view text)
{
    return run_on<std::monostate>(db_, "set_command_text", [&](connection& db) {
        auto number = parse_command_id(id);
        if (!number) {
            return std::monostate{}; // not an id this storage hands out
        }
        savepoint tx{db};
        statement s{db, "UPDATE command SET text = ? WHERE id = ? AND serial_number = ?"};
        s.bind(text, *number, serial_number).run();
        tx.release();
        return std::monostate{};
    });
}

storage_result<std::vector<result_match>>
sqlite_command_writer::record_command_results(std::string_view serial_number,
                                              std::span<const protocol::command_result> results,
                                              instant received_at)
{
    return run_on<std::vector<result_match>>(db_, "record_command_results", [&](connection& db) {
        savepoint tx{db};
        statement find{db, "SELECT state FROM command WHERE id = ? AND serial_number = ?"};
        statement update{db, R"sql(
UPDATE command SET state = ?, result_code = ?, result_command = ?, result_content = ?,
                   result_info = ?, result_at_ms = ?
WHERE id = ?
)sql"};
        statement log{db, R"sql(
INSERT INTO command_result (serial_number, command_id, return_code, command, info, content,
                            match, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
)sql"};
        std::vector<result_match> out;
        for (const auto& r : results) {
            auto info = join_key_values(r.info);
            auto match = result_match::unmatched;
            if (auto id = parse_command_id(r.id)) {
                find.bind(*id, serial_number);
                if (find.step()) {
                    auto state = parse_command_state(find.text(0));
                    if (state == command_state::done || state == command_state::failed) {
                        match = result_match::duplicate;
                    } else {
                        match = result_match::matched;
                        auto next =
                            r.return_code >= 0 ? command_state::done : command_state::failed;
                        update
                            .bind(to_string(next), r.return_code, r.command, r.content, info,
                                  received_at, *id)
                            .run();
                    }
                }
            }
            log.bind(serial_number, r.id, r.return_code, r.command, info, r.content,
                     match_name(match), received_at)
                .run();
            out.push_back(match);
        }
        tx.release();
        return out;
    });
}

storage_result<std::vector<stored_command_result>>
sqlite_command_store::list_command_results(const list_query& query)
{
    return reader_.run<std::vector<stored_command_result>>(
        "list_command_results", [&](connection& db) {
            return list<stored_command_result>(
                db,
                "id, serial_number, command_id, return_code, command, info, content, match, "
                "received_at_ms",
                "command_result", query, [](const statement& s) {
                    stored_command_result r;
                    r.id = s.integer(0);
                    r.serial_number = s.text(1);
                    r.result.id = s.text(2);
                    r.result.return_code = s.small_integer(3);
                    r.result.command = s.text(4);
                    r.result.info = split_key_values(s.text(5));
                    r.result.content = s.text(6);
                    r.match = parse_match(s.text(7));
                    r.received_at = s.time(8);
                    return r;
                });
        });
}

storage_result<std::vector<queued_command>>
sqlite_command_store::list_commands(std::string_view serial_number, std::size_t recent)
{
    return reader_.run<std::vector<queued_command>>("list_commands", [&](connection& db) {
        statement s{db, fmt::format(R"sql(
SELECT {} FROM command
WHERE serial_number = ?1
  AND (state IN ('queued', 'sent')
       OR id IN (SELECT id FROM command
                 WHERE serial_number = ?1 AND state NOT IN ('queued', 'sent')
                 ORDER BY id DESC LIMIT ?2))
ORDER BY id
)sql",
                                    command_columns)};
        s.bind(serial_number, clamp_limit(recent));
        std::vector<queued_command> out;
        while (s.step()) {
            out.push_back(read_command(s));
        }
        return out;
    });
}

} // namespace adms::server
