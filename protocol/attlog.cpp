#include "protocol/attlog.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/text.hpp"

namespace adms::protocol {
namespace {

// Index of the per-record sequence number some firmware sends (field 11).
constexpr std::size_t sequence_index = 10;

// Fills `record` from the TAB-split `fields`; returns the rejection reason, empty when good.
std::string read_record(const std::vector<std::string_view>& fields, attendance_record& record)
{
    if (fields.size() < 4) {
        return "too few fields (" + std::to_string(fields.size()) + ")";
    }
    std::string_view pin = fields[0];
    if (pin.empty()) {
        return "empty PIN";
    }
    if (pin.size() > max_pin_length) {
        return "PIN longer than " + std::to_string(max_pin_length) + " bytes (" +
               std::to_string(pin.size()) + ")";
    }
    if (text::has_control_byte(pin)) {
        return "PIN has control characters " + text::quote(pin);
    }
    auto time = parse_civil_time(fields[1]);
    if (!time) {
        return "bad time " + text::quote(fields[1]);
    }
    auto status = text::parse_integer<int>(text::trim_spaces(fields[2]));
    if (!status) {
        return "status is not a number " + text::quote(fields[2]);
    }
    auto verify = text::parse_integer<int>(text::trim_spaces(fields[3]));
    if (!verify) {
        return "verify is not a number " + text::quote(fields[3]);
    }
    record.pin.assign(pin);
    record.time = *time;
    record.status = *status;
    record.verify = *verify;
    if (fields.size() > 4) {
        record.work_code.assign(fields[4]);
    }
    for (std::size_t i = 5; i < fields.size(); ++i) {
        record.extra_fields.emplace_back(fields[i]);
    }
    if (fields.size() > sequence_index && text::is_all_digits(fields[sequence_index])) {
        // Digits that overflow 64 bits are no sequence number: leave it empty.
        record.sequence = text::parse_integer<std::uint64_t>(fields[sequence_index]);
    }
    return {};
}

} // namespace

parse_result<attendance_record> parse_attlog(std::string_view body)
{
    parse_result<attendance_record> result;
    std::vector<std::string_view> fields;
    text::line_reader lines{body};
    while (auto line = lines.next()) {
        if (text::is_blank(line->text)) {
            continue;
        }
        if (line->text.size() > max_attlog_line_length) {
            result.rejected.push_back(
                {line->number, std::string{line->text},
                 "line too long (" + std::to_string(line->text.size()) + " bytes)"});
            continue;
        }
        text::split_into(line->text, '\t', fields);
        attendance_record record;
        std::string reason = read_record(fields, record);
        if (reason.empty()) {
            result.records.push_back(std::move(record));
        } else {
            result.rejected.push_back({line->number, std::string{line->text}, std::move(reason)});
        }
    }
    return result;
}

} // namespace adms::protocol
