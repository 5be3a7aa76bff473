#include "server/webhooks/delivery_policy.hpp"

#include <algorithm>

namespace adms::server {

verdict classify(const send_result& result)
{
    if (result.outcome != send_outcome::answered) {
        return verdict::unavailable;
    }
    auto status = result.status;
    if (status >= 200 && status <= 299) {
        return verdict::delivered;
    }
    if (status == 410) {
        return verdict::gone;
    }
    // A redirect is never followed (the target could be anywhere): a misconfigured URL is the
    // endpoint's problem, not one event's, so nothing gets parked for it.
    if (status == 408 || status == 429 || status < 400 || status >= 500) {
        return verdict::unavailable;
    }
    return verdict::rejected;
}

std::string_view result_label(const send_result& result)
{
    switch (result.outcome) {
    case send_outcome::timeout:
        return "timeout";
    case send_outcome::connect_error:
        return "connect_error";
    case send_outcome::tls_error:
        return "tls_error";
    case send_outcome::blocked:
        return "blocked";
    case send_outcome::answered:
        break;
    }
    if (result.status >= 200 && result.status <= 299) {
        return "success";
    }
    if (result.status >= 300 && result.status <= 399) {
        return "http_3xx";
    }
    if (result.status >= 400 && result.status <= 499) {
        return "http_4xx";
    }
    return "http_5xx";
}

std::chrono::milliseconds retry_wait(const std::vector<std::chrono::seconds>& schedule,
                                     std::size_t step, double unit,
                                     std::optional<std::chrono::seconds> retry_after)
{
    std::chrono::seconds base{5};
    if (!schedule.empty()) {
        base = schedule[std::min(step, schedule.size() - 1)];
    }
    unit = std::clamp(unit, 0.0, 1.0);
    auto jittered = std::chrono::milliseconds{
        static_cast<long long>(static_cast<double>(base.count()) * 1000.0 * (0.8 + 0.4 * unit))};
    if (retry_after) {
        auto asked = std::min<std::chrono::milliseconds>(*retry_after, std::chrono::hours{24});
        jittered = std::max(jittered, asked);
    }
    return jittered;
}

std::optional<std::chrono::seconds> reject_wait(const std::vector<std::chrono::seconds>& schedule,
                                                std::size_t rejections)
{
    if (rejections == 0 || rejections > schedule.size()) {
        return std::nullopt;
    }
    return schedule[rejections - 1];
}

} // namespace adms::server
