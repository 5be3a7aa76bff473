#include "protocol/stamp.hpp"

#include <string_view>

namespace adms::protocol {

std::optional<std::string> merge_stamp(const std::optional<std::string>& current,
                                       const std::optional<std::string>& incoming)
{
    if (!incoming || incoming->empty()) {
        return current;
    }
    if (!current || current->empty()) {
        return incoming;
    }
    auto all_digits = [](std::string_view s) {
        for (char c : s) {
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    };
    if (!all_digits(*current) || !all_digits(*incoming)) {
        return incoming;
    }
    auto significant = [](std::string_view s) {
        auto first = s.find_first_not_of('0');
        return first == std::string_view::npos ? std::string_view{} : s.substr(first);
    };
    auto a = significant(*current);
    auto b = significant(*incoming);
    bool incoming_larger = b.size() != a.size() ? b.size() > a.size() : b > a;
    return incoming_larger ? incoming : current;
}

} // namespace adms::protocol
