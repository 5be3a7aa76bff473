#include "protocol/operlog.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/text.hpp"

namespace adms::protocol {
namespace {

// The longest tag accepted: real ones are at most 8 letters.
constexpr std::size_t max_tag_length = 32;

// True for an ASCII letter.
bool is_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// True when `tag` looks like a tag: a letter, then up to 31 letters, digits or '_'. Requiring a
// letter first keeps an ATTLOG line sent to the wrong table from passing as tag "1".
bool is_tag(std::string_view tag)
{
    if (tag.empty() || tag.size() > max_tag_length || !is_letter(tag.front())) {
        return false;
    }
    for (char c : tag) {
        if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_') {
            return false;
        }
    }
    return true;
}

// Reads the part of an OPLOG line after the tag; returns the rejection reason, empty when good.
std::string read_oplog(std::string_view rest, oplog_entry& entry)
{
    auto fields = text::split(rest, '\t');
    if (fields.size() < 3) {
        return "OPLOG with too few fields (" + std::to_string(fields.size()) + ")";
    }
    auto code = text::parse_integer<int>(text::trim_spaces(fields[0]));
    if (!code) {
        return "OPLOG code is not a number " + text::quote(fields[0]);
    }
    auto time = parse_civil_time(fields[2]);
    if (!time) {
        return "OPLOG bad time " + text::quote(fields[2]);
    }
    entry.code = *code;
    entry.operator_id.assign(fields[1]);
    entry.time = *time;
    for (std::size_t i = 3; i < fields.size(); ++i) {
        entry.objects.emplace_back(fields[i]);
    }
    return {};
}

// Splits `rest` into `key=value` items on TAB, at the first '='. Empty items (a doubled or
// trailing TAB) are skipped; an item without '=' becomes a key with an empty value.
std::vector<key_value> read_fields(std::string_view rest)
{
    std::vector<key_value> fields;
    for (auto item : text::split(rest, '\t')) {
        if (item.empty()) {
            continue;
        }
        auto equals = item.find('=');
        if (equals == std::string_view::npos) {
            fields.push_back({std::string{item}, {}});
        } else {
            fields.push_back(
                {std::string{item.substr(0, equals)}, std::string{item.substr(equals + 1)}});
        }
    }
    return fields;
}

// The value of field `key` as a string, empty when absent.
std::string field_or_empty(const operlog_record& record, std::string_view key)
{
    auto value = find_field(record, key);
    return value ? std::string{*value} : std::string{};
}

// The value of field `key` as an int, nullopt when absent or not a number.
std::optional<int> int_field(const operlog_record& record, std::string_view key)
{
    auto value = find_field(record, key);
    return value ? text::parse_integer<int>(text::trim_spaces(*value)) : std::nullopt;
}

} // namespace

parse_result<operlog_record> parse_operlog(std::string_view body)
{
    parse_result<operlog_record> result;
    text::line_reader lines{body};
    while (auto line = lines.next()) {
        std::string_view raw = line->text;
        if (text::is_blank(raw)) {
            continue;
        }
        auto end = raw.find_first_of(" \t");
        std::string_view tag = raw.substr(0, end);
        std::string_view rest =
            end == std::string_view::npos ? std::string_view{} : raw.substr(end + 1);
        if (!is_tag(tag)) {
            result.rejected.push_back({line->number, std::string{raw},
                                       "no tag at the start of the line " + text::quote(raw)});
            continue;
        }
        operlog_record record;
        record.tag.assign(tag);
        record.raw.assign(raw);
        if (tag == "OPLOG") {
            oplog_entry entry;
            std::string reason = read_oplog(rest, entry);
            if (!reason.empty()) {
                result.rejected.push_back({line->number, std::string{raw}, std::move(reason)});
                continue;
            }
            record.oplog = std::move(entry);
        } else {
            record.fields = read_fields(rest);
        }
        result.records.push_back(std::move(record));
    }
    return result;
}

std::optional<std::string_view> find_field(const operlog_record& record, std::string_view key)
{
    for (const auto& field : record.fields) {
        if (field.key == key) {
            return std::string_view{field.value};
        }
    }
    return std::nullopt;
}

std::optional<user_info> to_user_info(const operlog_record& record)
{
    auto pin = find_field(record, "PIN");
    if (record.tag != "USER" || !pin || pin->empty()) {
        return std::nullopt;
    }
    user_info user;
    user.pin.assign(*pin);
    user.name = field_or_empty(record, "Name");
    user.privilege = int_field(record, "Pri");
    user.password = field_or_empty(record, "Passwd");
    user.card = field_or_empty(record, "Card");
    user.group = field_or_empty(record, "Grp");
    user.time_zones = field_or_empty(record, "TZ");
    user.verify = int_field(record, "Verify");
    user.vice_card = field_or_empty(record, "ViceCard");
    return user;
}

} // namespace adms::protocol
