#include "server/webhooks/retry_after.hpp"

#include "protocol/text.hpp"

#include <algorithm>
#include <array>

namespace adms::server::webhooks {
namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 7> day_names{"Mon", "Tue", "Wed", "Thu",
                                                    "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_day_names{
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Reads an HTTP-date left to right. Names are case-sensitive, as RFC 9110 defines them.
class reader {
  public:
    explicit reader(std::string_view text) : rest_{text} {}

    bool literal(std::string_view expected)
    {
        if (!rest_.starts_with(expected)) {
            return false;
        }
        rest_.remove_prefix(expected.size());
        return true;
    }

    // Exactly `count` ASCII digits.
    std::optional<int> digits(std::size_t count)
    {
        auto text = rest_.substr(0, count);
        if (text.size() != count || !protocol::text::is_all_digits(text)) {
            return std::nullopt;
        }
        rest_.remove_prefix(count);
        return *protocol::text::parse_integer<int>(text);
    }

    // One of `names`; its index.
    template <std::size_t N>
    std::optional<unsigned> name(const std::array<std::string_view, N>& names)
    {
        for (unsigned i = 0; i < N; ++i) {
            if (literal(names[i])) {
                return i;
            }
        }
        return std::nullopt;
    }

    bool at_end() const { return rest_.empty(); }

  private:
    std::string_view rest_;
};

// time-of-day = hour ":" minute ":" second, 00:00:00 to 23:59:60 (a leap second).
std::optional<seconds> time_of_day(reader& in)
{
    auto hour = in.digits(2);
    if (!hour || !in.literal(":")) {
        return std::nullopt;
    }
    auto minute = in.digits(2);
    if (!minute || !in.literal(":")) {
        return std::nullopt;
    }
    auto second = in.digits(2);
    if (!second || *hour > 23 || *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    return hours{*hour} + minutes{*minute} + seconds{*second};
}

std::optional<sys_seconds> instant(int y, unsigned month_index, int d, std::optional<seconds> tod)
{
    year_month_day date{year{y}, month{month_index + 1}, day{static_cast<unsigned>(d)}};
    if (!tod || !date.ok()) {
        return std::nullopt;
    }
    return sys_days{date} + *tod;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<sys_seconds> imf_fixdate(std::string_view text)
{
    reader in{text};
    if (!in.name(day_names) || !in.literal(", ")) {
        return std::nullopt;
    }
    auto d = in.digits(2);
    auto m = in.literal(" ") ? in.name(month_names) : std::nullopt;
    auto y = m && in.literal(" ") ? in.digits(4) : std::nullopt;
    if (!d || !y || !in.literal(" ")) {
        return std::nullopt;
    }
    auto tod = time_of_day(in);
    if (!in.literal(" GMT") || !in.at_end()) {
        return std::nullopt;
    }
    return instant(*y, *m, *d, tod);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more than 50 years ahead of
// `now` is the most recent past year with those digits (RFC 9110 section 5.6.7).
std::optional<sys_seconds> rfc850_date(std::string_view text, sys_seconds now)
{
    reader in{text};
    if (!in.name(long_day_names) || !in.literal(", ")) {
        return std::nullopt;
    }
    auto d = in.digits(2);
    auto m = in.literal("-") ? in.name(month_names) : std::nullopt;
    auto yy = m && in.literal("-") ? in.digits(2) : std::nullopt;
    if (!d || !yy || !in.literal(" ")) {
        return std::nullopt;
    }
    auto tod = time_of_day(in);
    if (!in.literal(" GMT") || !in.at_end()) {
        return std::nullopt;
    }
    int this_year = static_cast<int>(year_month_day{floor<days>(now)}.year());
    int y = this_year - this_year % 100 + *yy;
    if (y > this_year + 50) {
        y -= 100;
    }
    return instant(y, *m, *d, tod);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (a one-digit day has a space before it).
std::optional<sys_seconds> asctime_date(std::string_view text)
{
    reader in{text};
    if (!in.name(day_names) || !in.literal(" ")) {
        return std::nullopt;
    }
    auto m = in.name(month_names);
    if (!m || !in.literal(" ")) {
        return std::nullopt;
    }
    auto d = in.literal(" ") ? in.digits(1) : in.digits(2);
    if (!d || !in.literal(" ")) {
        return std::nullopt;
    }
    auto tod = time_of_day(in);
    auto y = in.literal(" ") ? in.digits(4) : std::nullopt;
    if (!y || !in.at_end()) {
        return std::nullopt;
    }
    return instant(*y, *m, *d, tod);
}

} // namespace

std::optional<seconds> parse_retry_after(std::string_view text, sys_seconds now)
{
    text = protocol::text::trim_spaces(text);
    if (protocol::text::is_all_digits(text)) {
        // More than 9 digits is far beyond the cap: no need to parse it into anything.
        if (text.size() > 9) {
            return max_retry_after;
        }
        return std::min(seconds{*protocol::text::parse_integer<int>(text)}, max_retry_after);
    }
    auto date = imf_fixdate(text);
    if (!date) {
        date = rfc850_date(text, now);
    }
    if (!date) {
        date = asctime_date(text);
    }
    if (!date) {
        return std::nullopt;
    }
    return std::clamp(*date - now, seconds{0}, max_retry_after);
}

} // namespace adms::server::webhooks
