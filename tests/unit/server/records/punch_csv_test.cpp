// The CSV pages shared by GET /punches.csv and the payroll files: the header once, pages in id
// order, the cursor and the end decided from each page.
#include "server/records/punch_csv.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace adms::server;

namespace {

// `count` punches with ids 1..count, and a query over them as a store would answer it.
struct fake_punches {
    std::vector<stored_punch> rows;
    std::vector<punch_filter> asked;

    explicit fake_punches(std::int64_t count)
    {
        for (std::int64_t id = 1; id <= count; ++id) {
            stored_punch p;
            p.id = id;
            p.serial_number = "A1";
            p.pin = std::to_string(id);
            p.local_time = "2026-11-30 08:00:00";
            rows.push_back(p);
        }
    }
    std::vector<stored_punch> query(const punch_filter& filter)
    {
        asked.push_back(filter);
        std::vector<stored_punch> out;
        for (const auto& p : rows) {
            if (p.id > filter.after_id && (!filter.up_to_id || p.id <= *filter.up_to_id) &&
                out.size() < filter.limit) {
                out.push_back(p);
            }
        }
        return out;
    }
};

device_lookup utc_devices()
{
    return [](const stored_punch& p) {
        return punch_device{p.serial_number, *adms::tz::locate_zone("UTC").value};
    };
}

// Every page until done: the text and the number of queries.
std::string drain(punch_csv_pages& pages, fake_punches& store)
{
    std::string text;
    while (!pages.done()) {
        text += pages.take(store.query(pages.next_page()));
    }
    return text;
}

std::size_t lines(const std::string& text)
{
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("CSV pages: the header alone for no rows, then every row once in id order", "[api]")
{
    fake_punches none{0};
    punch_csv_pages empty{{}, std::nullopt, utc_devices()};
    CHECK(drain(empty, none) == csv_header());
    CHECK(none.asked.size() == 1);

    // Exactly one full page: a second, empty page tells it ended.
    fake_punches full{punch_csv_pages::page_rows};
    punch_csv_pages one_page{{}, std::nullopt, utc_devices()};
    auto text = drain(one_page, full);
    CHECK(lines(text) == punch_csv_pages::page_rows + 1);
    CHECK(full.asked.size() == 2);
    CHECK(full.asked[1].after_id == static_cast<std::int64_t>(punch_csv_pages::page_rows));
    CHECK(one_page.rows() == punch_csv_pages::page_rows);

    // Pages stop at up_to_id, and the rows are those csv_row makes.
    fake_punches many{5000};
    punch_filter bounded;
    bounded.up_to_id = 4500;
    punch_csv_pages pages{bounded, std::nullopt, utc_devices()};
    text = drain(pages, many);
    CHECK(pages.rows() == 4500);
    CHECK(many.asked.size() == 3);
    CHECK(text.starts_with(csv_header() + csv_row(many.rows[0], utc_devices()(many.rows[0]))));
    CHECK(text.ends_with(csv_row(many.rows[4499], utc_devices()(many.rows[4499]))));
}

TEST_CASE("CSV pages: a limit caps the rows of the whole export", "[api]")
{
    fake_punches many{5000};
    punch_csv_pages limited{{}, std::size_t{2500}, utc_devices()};
    auto text = drain(limited, many);
    CHECK(limited.rows() == 2500);
    CHECK(lines(text) == 2501);
    REQUIRE(many.asked.size() == 2);
    CHECK(many.asked[0].limit == punch_csv_pages::page_rows);
    CHECK(many.asked[1].limit == 500);
}
