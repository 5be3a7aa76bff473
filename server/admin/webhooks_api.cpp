#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/http/json_input.hpp"
#include "server/records/punch_format.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/database.hpp"
#include "server/webhooks/webhook_relay.hpp"
#include "server/webhooks/webhook_service.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace adms::server {
namespace {

std::string_view state_name(delivery_state state)
{
    switch (state) {
    case delivery_state::pending:
        return "pending";
    case delivery_state::delivered:
        return "delivered";
    case delivery_state::failed:
        return "failed";
    }
    return "pending";
}

json::value iso_or_null(const std::optional<instant>& t)
{
    if (!t) {
        return nullptr;
    }
    return json::value(format_iso(*t, *tz::locate_zone("UTC").value, true));
}

json::array strings_json(const std::vector<std::string>& items)
{
    return json::array(items.begin(), items.end());
}

// An endpoint as the API shows it: header values and secrets are never shown.
json::object endpoint_json(const webhook_endpoint& e, const webhook_relay::endpoint_status& status,
                           const std::optional<delivery_summary>& summary, instant now)
{
    json::object o;
    o["name"] = e.name;
    o["url"] = e.url;
    o["description"] = e.description;
    o["event_types"] = e.event_types.empty() ? json::array{"*"} : strings_json(e.event_types);
    o["devices"] = strings_json(e.devices);
    json::object headers;
    for (const auto& [name, value] : e.headers) {
        headers[name] = "(set)";
    }
    o["headers"] = std::move(headers);
    o["timeout"] = e.timeout.count();
    o["ca_file"] = e.ca_file;
    o["enabled"] = e.enabled;
    o["disabled_reason"] =
        e.disabled_reason.empty() ? json::value(nullptr) : json::value(e.disabled_reason);
    o["source"] = e.source;
    o["created_at"] = iso_or_null(e.created_at);
    o["signing_secrets"] = signing_keys(e, now).size();
    json::object delivery;
    delivery["up"] = e.enabled && status.up;
    delivery["down_since"] = iso_or_null(status.down_since);
    delivery["last_error"] =
        status.last_error.empty() ? json::value(nullptr) : json::value(status.last_error);
    delivery["next_probe"] = iso_or_null(status.next_probe);
    if (summary) {
        delivery["pending"] = summary->pending;
        delivery["failed"] = summary->failed;
        delivery["oldest_pending_age_seconds"] =
            summary->oldest_pending
                ? json::value(std::chrono::duration<double>(now - *summary->oldest_pending).count())
                : json::value(nullptr);
    }
    o["delivery"] = std::move(delivery);
    return o;
}

json::object delivery_json(const webhook_delivery& d)
{
    json::object o;
    o["event_id"] = d.event.id;
    o["type"] = d.event.type;
    o["sequence"] = d.event.seq;
    o["sn"] = d.event.lane.empty() ? json::value(nullptr) : json::value(d.event.lane);
    o["created_at"] = iso_or_null(d.event.created_at);
    o["state"] = state_name(d.state);
    o["attempts"] = d.attempts;
    o["next_attempt"] =
        d.state == delivery_state::pending ? iso_or_null(d.next_attempt) : json::value(nullptr);
    o["last_status"] = d.last_status == 0 ? json::value(nullptr) : json::value(d.last_status);
    o["last_error"] = d.last_error.empty() ? json::value(nullptr) : json::value(d.last_error);
    o["delivered_at"] = iso_or_null(d.delivered_at);
    return o;
}

input_result<webhook_input> read_webhook_input(std::string_view body, bool create)
{
    auto parsed = parse_json_object(body, !create);
    if (!parsed) {
        return parsed.error;
    }
    const auto& o = *parsed.value;
    if (auto unknown =
            reject_unknown_fields(o, {"name", "url", "description", "secret", "event_types",
                                      "devices", "headers", "timeout", "ca_file", "enabled"})) {
        return *unknown;
    }
    if (!create && o.contains("name")) {
        return input_error{"name", "cannot be changed (delete and create the endpoint)"};
    }
    webhook_input in;
    for (auto [field, target] :
         {std::pair{"name", &in.name}, std::pair{"url", &in.url},
          std::pair{"description", &in.description}, std::pair{"secret", &in.secret},
          std::pair{"ca_file", &in.ca_file}}) {
        auto value = optional_string(o, field);
        if (!value) {
            return value.error;
        }
        *target = std::move(*value.value);
    }
    if (create && (!in.name || !in.url)) {
        return input_error{!in.name ? "name" : "url", "is required"};
    }
    for (auto [field, target] :
         {std::pair{"event_types", &in.event_types}, std::pair{"devices", &in.devices}}) {
        auto value = optional_strings(o, field);
        if (!value) {
            return value.error;
        }
        *target = std::move(*value.value);
    }
    if (const auto* h = o.if_contains("headers"); h && !h->is_null()) {
        if (!h->is_object()) {
            return input_error{"headers", "must be an object of header names to string values"};
        }
        std::vector<std::pair<std::string, std::string>> headers;
        for (const auto& [name, value] : h->get_object()) {
            if (!value.is_string()) {
                return input_error{"headers", "must be an object of header names to string values"};
            }
            headers.emplace_back(std::string{name}, std::string{value.get_string()});
        }
        in.headers = std::move(headers);
    }
    auto timeout = optional_integer(o, "timeout");
    if (!timeout) {
        return timeout.error;
    }
    if (*timeout.value) {
        in.timeout = std::chrono::seconds{**timeout.value};
    }
    auto enabled = optional_bool(o, "enabled");
    if (!enabled) {
        return enabled.error;
    }
    in.enabled = *enabled.value;
    return in;
}

http_response outcome_failure(const webhook_outcome& out)
{
    switch (out.error) {
    case webhook_error::not_found:
        return error_reply(404, out.message);
    case webhook_error::exists:
        return error_reply(409, out.message);
    case webhook_error::invalid:
        return input_reply({out.field, out.message});
    case webhook_error::storage:
    case webhook_error::none:
        break;
    }
    return error_reply(503, out.message);
}

// An instant from the API: ISO 8601 with Z or an offset.
std::optional<instant> parse_instant(std::string_view text)
{
    auto bound = parse_time_bound(text, false);
    if (!bound.bound || !bound.bound->utc) {
        return std::nullopt;
    }
    return instant{*bound.bound->utc};
}

} // namespace

json::object admin_api::webhook_view(const webhook_endpoint& e)
{
    return endpoint_json(e, relay.status(e.name), std::nullopt, now_instant());
}

boost::asio::awaitable<http_response> admin_api::list_webhooks(const http_request&,
                                                               const route_match&)
{
    json::array rows;
    auto now = now_instant();
    for (const auto& e : webhooks.list()) {
        auto summary = co_await reader.run([&] { return store.outbox().summary(e.name); });
        std::optional<delivery_summary> s;
        if (summary) {
            s = *summary.value;
        }
        rows.push_back(endpoint_json(e, relay.status(e.name), s, now));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(rows)}});
}

boost::asio::awaitable<http_response> admin_api::create_webhook(const http_request& request,
                                                                const route_match&)
{
    auto input = read_webhook_input(request.body, true);
    if (!input) {
        co_return input_reply(input.error);
    }
    auto out = co_await webhooks.create(std::move(*input.value));
    if (!out.endpoint) {
        co_return outcome_failure(out);
    }
    auto data = webhook_view(*out.endpoint);
    if (out.new_secret) {
        data["secret"] = *out.new_secret; // shown this once
    }
    co_return json_reply(201, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> admin_api::get_webhook(const http_request&,
                                                             const route_match& match)
{
    auto name = match.param("name");
    auto e = webhooks.find(name);
    if (!e) {
        co_return error_reply(404, fmt::format("Webhook endpoint not found: {}", name));
    }
    auto summary = co_await reader.run([&] { return store.outbox().summary(name); });
    std::optional<delivery_summary> s;
    if (summary) {
        s = *summary.value;
    }
    co_return json_reply(
        200, json::object{{"success", true},
                          {"data", endpoint_json(*e, relay.status(name), s, now_instant())}});
}

boost::asio::awaitable<http_response> admin_api::patch_webhook(const http_request& request,
                                                               const route_match& match)
{
    auto input = read_webhook_input(request.body, false);
    if (!input) {
        co_return input_reply(input.error);
    }
    auto out = co_await webhooks.update(std::string{match.param("name")}, std::move(*input.value));
    if (!out.endpoint) {
        co_return outcome_failure(out);
    }
    co_return json_reply(200,
                         json::object{{"success", true}, {"data", webhook_view(*out.endpoint)}});
}

boost::asio::awaitable<http_response> admin_api::delete_webhook(const http_request&,
                                                                const route_match& match)
{
    auto out = co_await webhooks.remove(std::string{match.param("name")});
    if (out.error != webhook_error::none) {
        co_return outcome_failure(out);
    }
    co_return json_reply(200, json::object{{"success", true}});
}

boost::asio::awaitable<http_response> admin_api::rotate_webhook_secret(const http_request& request,
                                                                       const route_match& match)
{
    auto parsed = parse_json_object(request.body, true);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    if (auto unknown = reject_unknown_fields(*parsed.value, {"secret", "grace"})) {
        co_return input_reply(*unknown);
    }
    auto secret = optional_string(*parsed.value, "secret");
    auto grace_text = optional_string(*parsed.value, "grace");
    if (!secret || !grace_text) {
        co_return input_reply(!secret ? secret.error : grace_text.error);
    }
    std::chrono::seconds grace{24 * 3600};
    if (*grace_text.value) {
        auto d = parse_duration(**grace_text.value);
        if (!d || *d > std::chrono::hours{24 * 7}) {
            co_return input_reply({"grace", "must be a duration up to 7d, e.g. 24h (0s: none)"});
        }
        grace = *d;
    }
    auto out = co_await webhooks.rotate_secret(std::string{match.param("name")},
                                               std::move(*secret.value), grace);
    if (!out.endpoint) {
        co_return outcome_failure(out);
    }
    auto data = webhook_view(*out.endpoint);
    if (out.new_secret) {
        data["secret"] = *out.new_secret;
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> admin_api::test_webhook(const http_request&,
                                                              const route_match& match)
{
    auto out = co_await webhooks.send_test(std::string{match.param("name")});
    if (!out.endpoint) {
        co_return outcome_failure(out);
    }
    co_return json_reply(202, json::object{{"success", true}, {"event_id", out.message}});
}

boost::asio::awaitable<http_response> admin_api::enable_webhook(const http_request&,
                                                                const route_match& match)
{
    auto out = co_await webhooks.enable(std::string{match.param("name")});
    if (!out.endpoint) {
        co_return outcome_failure(out);
    }
    co_return json_reply(200,
                         json::object{{"success", true}, {"data", webhook_view(*out.endpoint)}});
}

boost::asio::awaitable<http_response> admin_api::list_deliveries(const http_request&,
                                                                 const route_match& match)
{
    std::string name{match.param("name")};
    if (!webhooks.find(name)) {
        co_return error_reply(404, fmt::format("Webhook endpoint not found: {}", name));
    }
    delivery_filter filter{.endpoint = name};
    if (const auto* state = find_param(match.query, "state")) {
        if (*state == "pending" || *state == "delivered" || *state == "failed") {
            filter.state = *state == "pending"     ? delivery_state::pending
                           : *state == "delivered" ? delivery_state::delivered
                                                   : delivery_state::failed;
        } else {
            co_return input_reply({"state", "must be pending, delivered or failed"});
        }
    }
    if (const auto* after = find_param(match.query, "after")) {
        auto n = parse_number(*after);
        if (!n || *n < 0) {
            co_return input_reply({"after", "must be a sequence from a previous page's next"});
        }
        filter.after_seq = *n;
    }
    if (const auto* limit = find_param(match.query, "limit")) {
        auto n = parse_number(*limit);
        if (!n || *n < 1 || *n > 1000) {
            co_return input_reply({"limit", "must be from 1 to 1000"});
        }
        filter.limit = static_cast<std::size_t>(*n);
    }
    auto rows = co_await reader.run([&] { return store.outbox().list_deliveries(filter); });
    if (!rows) {
        co_return storage_unavailable(rows.error);
    }
    json::array data;
    for (const auto& d : *rows.value) {
        data.push_back(delivery_json(d));
    }
    json::value next = nullptr;
    if (rows.value->size() == filter.limit) {
        next = rows.value->back().event.seq;
    }
    co_return json_reply(
        200, json::object{{"success", true}, {"data", std::move(data)}, {"next", next}});
}

boost::asio::awaitable<http_response> admin_api::get_delivery(const http_request&,
                                                              const route_match& match)
{
    std::string name{match.param("name")};
    std::string event_id{match.param("event_id")};
    auto found = co_await reader.run([&] { return store.outbox().find_delivery(name, event_id); });
    if (!found) {
        co_return storage_unavailable(found.error);
    }
    if (!found.value->has_value()) {
        co_return error_reply(404, fmt::format("No delivery of {} to {}", event_id, name));
    }
    const auto& d = **found.value;
    auto attempts = co_await reader.run([&] { return store.outbox().attempts(name, d.event.seq); });
    if (!attempts) {
        co_return storage_unavailable(attempts.error);
    }
    auto o = delivery_json(d);
    json::array log;
    for (const auto& a : *attempts.value) {
        json::object entry;
        entry["number"] = a.number;
        entry["at"] = iso_or_null(a.at);
        entry["status"] = a.status == 0 ? json::value(nullptr) : json::value(a.status);
        entry["error"] = a.error.empty() ? json::value(nullptr) : json::value(a.error);
        entry["duration_ms"] = a.duration.count();
        entry["response"] = a.response;
        log.push_back(std::move(entry));
    }
    o["attempt_log"] = std::move(log);
    o["body"] = d.event.body;
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(o)}});
}

boost::asio::awaitable<http_response> admin_api::retry_delivery(const http_request&,
                                                                const route_match& match)
{
    std::string name{match.param("name")};
    auto retried = co_await webhooks.retry(name, std::string{match.param("event_id")});
    if (!retried) {
        co_return storage_unavailable(retried.error);
    }
    if (!*retried.value) {
        co_return error_reply(
            404, fmt::format("No delivery of {} to {}", match.param("event_id"), name));
    }
    co_return json_reply(202, json::object{{"success", true}});
}

boost::asio::awaitable<http_response> admin_api::replay_webhook(const http_request& request,
                                                                const route_match& match)
{
    std::string name{match.param("name")};
    if (!webhooks.find(name)) {
        co_return error_reply(404, fmt::format("Webhook endpoint not found: {}", name));
    }
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    const auto& o = *parsed.value;
    if (auto unknown = reject_unknown_fields(o, {"from", "to", "after_sequence", "to_sequence"})) {
        co_return input_reply(*unknown);
    }
    replay_request range;
    for (auto field : {"from", "to"}) {
        auto text = optional_string(o, field);
        if (!text) {
            co_return input_reply(text.error);
        }
        if (*text.value) {
            auto t = parse_instant(**text.value);
            if (!t) {
                co_return input_reply({field, "must be an instant with Z or an offset, e.g. "
                                              "2026-11-30T00:00:00Z"});
            }
            (std::string_view{field} == "from" ? range.from : range.to) = t;
        }
    }
    auto after = optional_integer(o, "after_sequence");
    auto to = optional_integer(o, "to_sequence");
    if (!after || !to) {
        co_return input_reply(!after ? after.error : to.error);
    }
    if (*after.value) {
        range.from_seq = **after.value + 1;
    }
    range.to_seq = *to.value;
    if (!range.from && !range.to && !*after.value && !range.to_seq) {
        co_return input_reply({"", "give from/to (instants) or after_sequence/to_sequence"});
    }
    auto requeued = co_await webhooks.replay(name, range);
    if (!requeued) {
        co_return storage_unavailable(requeued.error);
    }
    co_return json_reply(202, json::object{{"success", true}, {"requeued", *requeued.value}});
}

} // namespace adms::server
