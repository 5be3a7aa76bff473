#include "server/webhooks/http_sender.hpp"

#include "server/webhooks/http_client.hpp"
#include "server/webhooks/signature.hpp"
#include "server/webhooks/webhook_url.hpp"

namespace adms::server {
namespace {

send_outcome outcome_of(webhooks::delivery_outcome outcome)
{
    switch (outcome) {
    case webhooks::delivery_outcome::success:
    case webhooks::delivery_outcome::http_status:
        return send_outcome::answered;
    case webhooks::delivery_outcome::timeout:
        return send_outcome::timeout;
    case webhooks::delivery_outcome::tls_error:
        return send_outcome::tls_error;
    case webhooks::delivery_outcome::blocked:
        return send_outcome::blocked;
    case webhooks::delivery_outcome::connect_error:
    case webhooks::delivery_outcome::invalid_request:
        break;
    }
    return send_outcome::connect_error;
}

send_result failed(send_outcome outcome, std::string error)
{
    send_result r;
    r.outcome = outcome;
    r.error = std::move(error);
    return r;
}

} // namespace

net::awaitable<send_result> http_webhook_sender::send(const webhook_endpoint& endpoint,
                                                      const outbox_event& event)
{
    auto target = webhooks::check_webhook_url(endpoint.url, allow_list_);
    if (!target.value) {
        co_return failed(send_outcome::blocked, target.error);
    }
    auto now = std::chrono::system_clock::now();
    auto now_ms = std::chrono::time_point_cast<std::chrono::milliseconds>(now);
    std::vector<webhooks::secret_bytes> keys;
    for (const auto& key : signing_keys(endpoint, now_ms)) {
        if (auto decoded = webhooks::decode_secret(key); decoded.bytes) {
            keys.push_back(std::move(*decoded.bytes));
        }
    }
    if (keys.empty()) {
        co_return failed(send_outcome::connect_error, "the endpoint has no valid signing secret");
    }
    webhooks::delivery_request request;
    request.target = std::move(*target.value);
    request.webhook_id = event.id;
    request.timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    request.body = event.body;
    request.signature =
        webhooks::signature_header(keys, request.webhook_id, request.timestamp, request.body);
    for (const auto& [name, value] : endpoint.headers) {
        request.extra_headers.push_back({name, value});
    }
    request.timeout = endpoint.timeout;
    request.allow_list = allow_list_;
    request.ca_file = endpoint.ca_file;
    auto result = co_await webhooks::post(request);
    send_result r;
    r.outcome = outcome_of(result.outcome);
    r.status = result.status;
    r.retry_after = result.retry_after;
    r.error = std::move(result.error);
    r.response = std::move(result.body);
    r.duration = result.duration;
    co_return r;
}

} // namespace adms::server
