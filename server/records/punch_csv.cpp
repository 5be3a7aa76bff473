#include "server/records/punch_csv.hpp"

#include <algorithm>

namespace adms::server {

punch_csv_pages::punch_csv_pages(punch_filter filter, std::optional<std::size_t> limit,
                                 device_lookup device_of)
    : filter_{std::move(filter)}, remaining_{limit}, device_of_{std::move(device_of)}
{
    done_ = remaining_ == std::size_t{0};
}

punch_filter punch_csv_pages::next_page() const
{
    auto page = filter_;
    page.limit = std::min(page_rows, remaining_.value_or(page_rows));
    return page;
}

std::string punch_csv_pages::take(const std::vector<stored_punch>& rows)
{
    std::string chunk;
    if (!header_sent_) {
        header_sent_ = true;
        chunk = csv_header();
    }
    auto asked = next_page().limit;
    for (const auto& p : rows) {
        chunk += csv_row(p, device_of_(p));
    }
    rows_ += rows.size();
    if (remaining_) {
        *remaining_ -= std::min(*remaining_, rows.size());
    }
    if (rows.size() < asked || remaining_ == std::size_t{0}) {
        done_ = true;
    } else {
        filter_.after_id = rows.back().id;
    }
    return chunk;
}

} // namespace adms::server
