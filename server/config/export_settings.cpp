#include "server/config/export_settings.hpp"

#include "server/config/export_tables.hpp"
#include "server/config/setting_values.hpp"
#include "server/observability/log_format.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace adms::server {

bool valid_export_name(std::string_view name)
{
    if (name.empty() || name.size() > 64 || name.front() == '.') {
        return false;
    }
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::optional<std::chrono::seconds> parse_export_at(std::string_view text)
{
    if (text.size() != 5 && text.size() != 8) {
        return std::nullopt;
    }
    auto hh_mm = parse_time_of_day(text.substr(0, 5));
    if (!hh_mm) {
        return std::nullopt;
    }
    std::chrono::seconds at{*hh_mm};
    if (text.size() == 8) {
        char colon = text[5];
        char tens = text[6];
        char ones = text[7];
        if (colon != ':' || tens < '0' || tens > '5' || ones < '0' || ones > '9') {
            return std::nullopt;
        }
        at += std::chrono::seconds{(tens - '0') * 10 + (ones - '0')};
    }
    return at;
}

std::string format_export_at(std::chrono::seconds at)
{
    auto seconds = at.count() % 60;
    auto text = format_time_of_day(std::chrono::duration_cast<std::chrono::minutes>(at));
    return seconds == 0 ? text : fmt::format("{}:{:02}", text, seconds);
}

std::string check_exports(const export_table& exports)
{
    std::map<std::filesystem::path, std::string> directories;
    for (const auto& [name, e] : exports) {
        if (!valid_export_name(name)) {
            return fmt::format("invalid exports.{}: the name must be {}", escape_for_log(name),
                               export_name_rule);
        }
        if (e.at < std::chrono::seconds{0} || e.at >= std::chrono::hours{24}) {
            return fmt::format("invalid exports.{}.at: expected a time of day", name);
        }
        if (e.directory.empty()) {
            return fmt::format("invalid exports.{}.directory: expected a directory", name);
        }
        if (e.format != "csv") {
            return fmt::format("invalid exports.{}.format '{}': expected csv (the only format)",
                               name, escape_for_log(e.format));
        }
        // Lexically: the directory may not exist yet. Files of the same day would collide.
        std::error_code ec;
        auto where = std::filesystem::absolute(e.directory, ec).lexically_normal();
        if (!where.has_filename()) {
            where = where.parent_path();
        }
        if (auto [it, added] = directories.emplace(where, name); !added) {
            return fmt::format("invalid exports.{}.directory '{}': exports.{} writes there too",
                               name, escape_for_log(e.directory), it->second);
        }
    }
    return {};
}

namespace {

// Reads one [exports.<name>] table.
std::string read_export_table(const std::string& name, const toml::table& table,
                              export_settings& out)
{
    bool has_at = false;
    for (const auto& [key_node, value_node] : table) {
        std::string key{key_node.str()};
        auto where = fmt::format("exports.{}.{}", name, escape_for_log(key));
        if (key != "at" && key != "directory" && key != "format") {
            return fmt::format("unknown setting {} (expected at, directory, format)", where);
        }
        auto value = value_node.value<std::string>();
        if (!value) {
            return fmt::format("invalid {}: expected a string", where);
        }
        if (key == "at") {
            auto at = parse_export_at(*value);
            if (!at) {
                return fmt::format("invalid {} '{}': expected HH:MM (or HH:MM:SS), local time",
                                   where, escape_for_log(*value));
            }
            out.at = *at;
            has_at = true;
        } else if (key == "directory") {
            out.directory = *value;
        } else {
            out.format = *value;
        }
    }
    if (!has_at) {
        return fmt::format("invalid exports.{}: missing at (HH:MM, local time)", name);
    }
    if (out.directory.empty()) {
        return fmt::format("invalid exports.{}: missing directory", name);
    }
    return {};
}

} // namespace

std::string read_export_tables(const toml::node& node, export_table& exports)
{
    const auto* tables = node.as_table();
    if (tables == nullptr) {
        return "invalid exports: expected a table of [exports.<name>]";
    }
    export_table read;
    for (const auto& [name_node, table_node] : *tables) {
        std::string name{name_node.str()};
        const auto* table = table_node.as_table();
        if (table == nullptr) {
            return fmt::format("invalid exports.{}: expected a table", name);
        }
        if (!valid_export_name(name)) {
            return fmt::format("invalid exports.{}: the name must be {}", escape_for_log(name),
                               export_name_rule);
        }
        export_settings e;
        if (auto error = read_export_table(name, *table, e); !error.empty()) {
            return error;
        }
        read[name] = std::move(e);
    }
    if (auto error = check_exports(read); !error.empty()) {
        return error;
    }
    exports = std::move(read);
    return {};
}

} // namespace adms::server
