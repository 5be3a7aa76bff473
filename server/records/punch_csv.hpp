#pragma once

#include "server/records/punch_format.hpp"
#include "server/storage/punch_store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

// The CSV of the punches a filter matches, page by page: the header, then each page's rows in id
// order. GET /punches.csv streams it and the payroll exports write it to a file, so both give the
// same bytes by construction. It runs no query itself: the caller runs next_page() on the store
// (off the I/O threads) and hands the rows to take().
// Thread safety: none; one caller at a time.
class punch_csv_pages {
  public:
    // Rows per page: bounds the memory one page holds (a few hundred KB of CSV).
    static constexpr std::size_t page_rows = 2000;

    // `filter` should carry up_to_id (the last punch stored when the export started), so a
    // busy device cannot keep the export going forever; `limit` caps the rows of the whole
    // export (nullopt: every match).
    punch_csv_pages(punch_filter filter, std::optional<std::size_t> limit, device_lookup device_of);

    // Whether the last page was taken.
    bool done() const { return done_; }
    // The query of the next page.
    punch_filter next_page() const;
    // The CSV text of the next page's rows (after the header, on the first call), and moves past
    // them; a short page is the last.
    std::string take(const std::vector<stored_punch>& rows);
    // The rows taken so far.
    std::size_t rows() const { return rows_; }

  private:
    punch_filter filter_;
    std::optional<std::size_t> remaining_;
    device_lookup device_of_;
    std::size_t rows_ = 0;
    bool header_sent_ = false;
    bool done_ = false;
};

} // namespace adms::server
