#include "server/webhooks/webhook_service.hpp"

#include "server/config/webhook_config.hpp"
#include "server/events/event_stream.hpp"
#include "server/observability/logger.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/database.hpp"
#include "server/webhooks/address_policy.hpp"
#include "server/webhooks/http_client.hpp"
#include "server/webhooks/signature.hpp"
#include "server/webhooks/webhook_registry.hpp"
#include "server/webhooks/webhook_relay.hpp"
#include "server/webhooks/webhook_url.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace adms::server {
namespace {

instant now_instant()
{
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
}

webhook_outcome refused(webhook_error error, std::string field, std::string message)
{
    webhook_outcome out;
    out.error = error;
    out.field = std::move(field);
    out.message = std::move(message);
    return out;
}

webhook_outcome not_found(std::string_view name)
{
    return refused(webhook_error::not_found, {},
                   fmt::format("Webhook endpoint not found: {}", name));
}

webhook_outcome storage_refused(const storage_error& error)
{
    return refused(webhook_error::storage, {}, "storage unavailable: " + error.message);
}

std::string read_secret_file(const std::string& path, std::string& error)
{
    std::ifstream in{path};
    if (!in) {
        error = fmt::format("cannot read secret_file '{}'", path);
        return {};
    }
    std::stringstream text;
    text << in.rdbuf();
    auto secret = text.str();
    while (!secret.empty() &&
           (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) {
        secret.pop_back();
    }
    return secret;
}

constexpr std::string_view removed_from_config = "no longer in the config file";

} // namespace

void apply_input(webhook_endpoint& e, const webhook_input& input)
{
    if (input.url) {
        e.url = *input.url;
    }
    if (input.description) {
        e.description = *input.description;
    }
    if (input.event_types) {
        e.event_types = *input.event_types;
    }
    if (input.devices) {
        e.devices = *input.devices;
    }
    if (input.headers) {
        e.headers = *input.headers;
    }
    if (input.timeout) {
        e.timeout = *input.timeout;
    }
    if (input.ca_file) {
        e.ca_file = *input.ca_file;
    }
    if (input.enabled) {
        e.enabled = *input.enabled;
        if (e.enabled) {
            e.disabled_reason.clear();
        } else if (e.disabled_reason.empty()) {
            e.disabled_reason = "disabled through the API";
        }
    }
}

webhook_service::webhook_service(const settings& config, database& store, commit_queue& writer,
                                 blocking_pool& reader, webhook_registry& registry,
                                 webhook_relay& relay, const event_stream& events, logger& log)
    : config_{config}, store_{store}, writer_{writer}, reader_{reader}, registry_{registry},
      relay_{relay}, events_{events}, log_{log},
      allow_list_{network_list::parse(config.webhook_allow_networks).value.value_or(network_list{})}
{
}

std::pair<std::string, std::string> webhook_service::check_static(const webhook_endpoint& e) const
{
    if (!valid_endpoint_name(e.name)) {
        return {"name", "must be 1 to 64 letters, digits, '-', '_' or '.'"};
    }
    if (auto url = webhooks::check_webhook_url(e.url, allow_list_); !url.value) {
        return {"url", url.error};
    }
    for (const auto& type : e.event_types) {
        if (type != "*" && !known_event_type(type)) {
            return {"event_types", fmt::format("unknown event type '{}'", type)};
        }
    }
    for (const auto& device : e.devices) {
        if (device.empty() || device.size() > 64) {
            return {"devices", "each must be a serial number or alias"};
        }
    }
    for (const auto& [name, value] : e.headers) {
        if (auto why = webhooks::check_extra_header(name, value); !why.empty()) {
            return {"headers", why};
        }
    }
    if (e.timeout < std::chrono::seconds{1} || e.timeout > std::chrono::seconds{30}) {
        return {"timeout", "must be from 1 to 30 seconds"};
    }
    for (const auto& secret : e.secrets) {
        if (auto decoded = webhooks::decode_secret(secret.key); !decoded.bytes) {
            return {"secret", decoded.error};
        }
    }
    return {};
}

net::awaitable<std::pair<std::string, std::string>>
webhook_service::check(const webhook_endpoint& e)
{
    if (auto error = check_static(e); !error.first.empty()) {
        co_return error;
    }
    // A name is checked now against what it resolves to (and again at every connection): a
    // name that points at loopback is refused here, with the setting to change. A name that
    // does not resolve now is accepted: DNS may be down; the connection checks it.
    auto url = webhooks::check_webhook_url(e.url, allow_list_);
    if (url.value->host_is_address || !resolve_names_) {
        co_return std::pair<std::string, std::string>{};
    }
    auto executor = co_await net::this_coro::executor;
    tcp::resolver resolver{executor};
    auto [ec, results] = co_await resolver.async_resolve(
        url.value->host, std::to_string(url.value->port), net::as_tuple(net::use_awaitable));
    if (ec) {
        co_return std::pair<std::string, std::string>{};
    }
    for (const auto& entry : results) {
        auto address = entry.endpoint().address().to_string();
        if (auto verdict = webhooks::check_address(address, allow_list_); !verdict.allowed) {
            co_return std::pair<std::string, std::string>{
                "url", fmt::format("{} resolves to {}", url.value->host, verdict.error)};
        }
    }
    co_return std::pair<std::string, std::string>{};
}

net::awaitable<storage_status> webhook_service::save(const webhook_endpoint& e)
{
    auto row = row_of(e);
    auto saved = co_await writer_.run([&](write_tx& tx) { return tx.outbox().save_endpoint(row); });
    if (saved) {
        registry_.put(e);
        relay_.refresh(e.name);
    }
    co_return saved;
}

std::vector<webhook_endpoint> webhook_service::list() const
{
    return registry_.list();
}

std::optional<webhook_endpoint> webhook_service::find(std::string_view name) const
{
    return registry_.find(name);
}

net::awaitable<webhook_outcome> webhook_service::create(webhook_input input)
{
    webhook_endpoint e;
    e.name = input.name.value_or("");
    apply_input(e, input);
    e.source = "api";
    e.created_at = now_instant();
    webhook_outcome out;
    if (input.secret) {
        e.secrets.push_back({*input.secret, std::nullopt});
    } else {
        out.new_secret = webhooks::generate_secret();
        e.secrets.push_back({*out.new_secret, std::nullopt});
    }
    if (auto [field, why] = co_await check(e); !field.empty()) {
        co_return refused(webhook_error::invalid, field, why);
    }
    if (registry_.find(e.name)) {
        co_return refused(webhook_error::exists, "name",
                          fmt::format("a webhook endpoint named {} exists", e.name));
    }
    if (auto saved = co_await save(e); !saved) {
        co_return storage_refused(saved.error);
    }
    log_.event("webhook", fmt::format("Webhook endpoint {} created: {}", e.name, e.url),
               {{"endpoint", e.name}});
    out.endpoint = std::move(e);
    co_return out;
}

net::awaitable<webhook_outcome> webhook_service::update(std::string name, webhook_input input)
{
    auto e = registry_.find(name);
    if (!e) {
        co_return not_found(name);
    }
    apply_input(*e, input);
    if (input.secret) {
        e->secrets = {{*input.secret, std::nullopt}};
    }
    if (auto [field, why] = co_await check(*e); !field.empty()) {
        co_return refused(webhook_error::invalid, field, why);
    }
    if (auto saved = co_await save(*e); !saved) {
        co_return storage_refused(saved.error);
    }
    webhook_outcome out;
    out.endpoint = std::move(e);
    co_return out;
}

net::awaitable<webhook_outcome> webhook_service::remove(std::string name)
{
    if (!registry_.find(name)) {
        co_return not_found(name);
    }
    auto deleted =
        co_await writer_.run([&](write_tx& tx) { return tx.outbox().delete_endpoint(name); });
    if (!deleted) {
        co_return storage_refused(deleted.error);
    }
    registry_.erase(name);
    relay_.refresh(name);
    log_.event("webhook", fmt::format("Webhook endpoint {} deleted with its deliveries", name),
               {{"endpoint", name}});
    co_return webhook_outcome{};
}

net::awaitable<webhook_outcome> webhook_service::rotate_secret(std::string name,
                                                               std::optional<std::string> secret,
                                                               std::chrono::seconds grace)
{
    auto e = registry_.find(name);
    if (!e) {
        co_return not_found(name);
    }
    auto now = now_instant();
    std::vector<webhook_secret> secrets;
    webhook_outcome out;
    if (!secret) {
        out.new_secret = webhooks::generate_secret();
    }
    secrets.push_back({secret ? *secret : *out.new_secret, std::nullopt});
    // The old secrets still in force sign too until the grace ends (or their own end).
    for (auto old : e->secrets) {
        if (grace.count() <= 0 || (old.expires_at && *old.expires_at <= now)) {
            continue;
        }
        auto end = now + grace;
        old.expires_at = old.expires_at ? std::min(*old.expires_at, end) : end;
        secrets.push_back(old);
    }
    e->secrets = std::move(secrets);
    if (auto [field, why] = check_static(*e); !field.empty()) {
        co_return refused(webhook_error::invalid, field, why);
    }
    if (auto saved = co_await save(*e); !saved) {
        co_return storage_refused(saved.error);
    }
    out.endpoint = std::move(e);
    co_return out;
}

net::awaitable<webhook_outcome> webhook_service::enable(std::string name)
{
    webhook_input input;
    input.enabled = true;
    co_return co_await update(std::move(name), std::move(input));
}

net::awaitable<webhook_outcome> webhook_service::send_test(std::string name)
{
    auto e = registry_.find(name);
    if (!e) {
        co_return not_found(name);
    }
    // webhook.test goes to this endpoint only (no subscription wants it): appended directly.
    outbox_event row;
    auto now = now_instant();
    row.id = new_event_id(now);
    row.type = "webhook.test";
    row.created_at = now;
    boost::json::object data;
    data["endpoint"] = name;
    data["message"] = "A test event from admsd: if this arrived and verified, deliveries work.";
    row.body = event_envelope(row.id, row.type, now, data);
    std::vector<std::string> to{name};
    auto appended =
        co_await writer_.run([&](write_tx& tx) { return tx.outbox().append_event(row, to); });
    if (!appended) {
        co_return storage_refused(appended.error);
    }
    published_event published{row, to};
    events_.publish(std::span<const published_event>{&published, 1});
    webhook_outcome out;
    out.endpoint = std::move(e);
    out.message = row.id;
    co_return out;
}

net::awaitable<storage_result<bool>> webhook_service::retry(std::string name, std::string event_id)
{
    auto found =
        co_await reader_.run([&] { return store_.outbox().find_delivery(name, event_id); });
    if (!found) {
        co_return found.error;
    }
    if (!found.value->has_value()) {
        co_return false;
    }
    auto seq = (*found.value)->event.seq;
    requeue_range range{.endpoint = name, .from_seq = seq, .to_seq = seq};
    auto now = now_instant();
    auto requeued =
        co_await writer_.run([&](write_tx& tx) { return tx.outbox().requeue(range, now); });
    if (!requeued) {
        co_return requeued.error;
    }
    relay_.refresh(name);
    co_return true;
}

net::awaitable<storage_result<std::size_t>> webhook_service::replay(std::string name,
                                                                    replay_request asked)
{
    requeue_range range{.endpoint = name,
                        .from_seq = asked.from_seq,
                        .to_seq = asked.to_seq,
                        .created_from = asked.from,
                        .created_to = asked.to};
    auto now = now_instant();
    auto requeued =
        co_await writer_.run([&](write_tx& tx) { return tx.outbox().requeue(range, now); });
    if (requeued) {
        relay_.refresh(name);
        log_.event("webhook",
                   fmt::format("Webhook endpoint {}: {} deliveries requeued for a replay", name,
                               *requeued.value),
                   {{"endpoint", name}});
    }
    co_return requeued;
}

std::string webhook_service::from_config(const std::string& name, const webhook_config& c,
                                         const std::optional<webhook_endpoint>& stored,
                                         webhook_endpoint& e)
{
    e.name = name;
    e.url = c.url;
    e.description = c.description;
    e.event_types = c.event_types;
    e.devices = c.devices;
    e.headers = c.headers;
    e.timeout = c.timeout;
    e.ca_file = c.ca_file;
    e.source = "config";
    e.created_at = stored ? stored->created_at : now_instant();
    // A disabled endpoint stays disabled (410, too long down, or by the API) until `enable`,
    // unless it was disabled for having left the file it is now back in.
    bool keep_disabled = stored && !stored->enabled && stored->source == "config" &&
                         stored->disabled_reason != removed_from_config;
    e.enabled = !keep_disabled;
    e.disabled_reason = keep_disabled ? stored->disabled_reason : "";
    std::string secret = c.secret;
    if (!c.secret_file.empty()) {
        std::string error;
        secret = read_secret_file(c.secret_file, error);
        if (!error.empty()) {
            return error;
        }
    }
    if (!secret.empty()) {
        e.secrets = {{secret, std::nullopt}};
        // A rotation in progress keeps its older secrets while their grace lasts.
        if (stored && !stored->secrets.empty() && stored->secrets.front().key == secret) {
            e.secrets = stored->secrets;
        }
    } else if (stored && !stored->secrets.empty()) {
        e.secrets = stored->secrets; // generated once, at the first start
    } else {
        e.secrets = {{webhooks::generate_secret(), std::nullopt}};
        log_.event("webhook",
                   fmt::format("Webhook endpoint {} has no secret in the config file: one was "
                               "generated and kept (never logged); POST "
                               "/webhooks/{}/rotate-secret shows a new one, or set secret_file",
                               name, name),
                   {{"endpoint", name}});
    }
    return {};
}

std::string webhook_service::apply_config()
{
    auto stored = store_.outbox().endpoints();
    if (!stored) {
        return fmt::format("cannot read the webhook endpoints: {}", stored.error.message);
    }
    for (const auto& row : *stored.value) {
        if (auto e = endpoint_of(row)) {
            registry_.put(std::move(*e));
        } else {
            log_.event("webhook", fmt::format("Webhook endpoint {}: its stored definition cannot "
                                              "be read; it is left out",
                                              row.name));
        }
    }
    for (const auto& [name, c] : config_.webhooks) {
        webhook_endpoint e;
        if (auto error = from_config(name, c, registry_.find(name), e); !error.empty()) {
            return fmt::format("invalid webhooks.{}: {}", name, error);
        }
        if (auto [field, why] = check_static(e); !field.empty()) {
            return fmt::format("invalid webhooks.{}.{}: {}", name, field == "name" ? "" : field,
                               why);
        }
        auto row = row_of(e);
        auto saved = store_.write([&](write_tx& tx) { return tx.outbox().save_endpoint(row); });
        if (!saved) {
            return fmt::format("cannot save webhooks.{}: {}", name, saved.error.message);
        }
        registry_.put(std::move(e));
    }
    // Endpoints the file declared before but no longer does: disabled, their events kept.
    for (auto e : registry_.list()) {
        if (e.source != "config" || config_.webhooks.contains(e.name) || !e.enabled) {
            continue;
        }
        e.enabled = false;
        e.disabled_reason = std::string{removed_from_config};
        auto row = row_of(e);
        if (auto saved = store_.write([&](write_tx& tx) { return tx.outbox().save_endpoint(row); });
            !saved) {
            return fmt::format("cannot save webhook endpoint {}: {}", e.name, saved.error.message);
        }
        registry_.put(std::move(e));
    }
    return {};
}

} // namespace adms::server
