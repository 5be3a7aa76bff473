#pragma once

#include "server/security/access_control.hpp"
#include "server/webhooks/webhook_relay.hpp"

namespace adms::server {

// The relay's sender over the HTTP client (http_client.hpp): signs the event's stored bytes
// with the endpoint's keys in force at this attempt (webhook-timestamp = now) and POSTs them.
// Thread safety: send() may run concurrently.
class http_webhook_sender final : public webhook_sender {
  public:
    explicit http_webhook_sender(const network_list& allow_list) : allow_list_{allow_list} {}

    net::awaitable<send_result> send(const webhook_endpoint& endpoint,
                                     const outbox_event& event) override;

  private:
    const network_list& allow_list_;
};

} // namespace adms::server
