#include "protocol/devicecmd.hpp"

#include "protocol/text.hpp"

#include <optional>

namespace adms::protocol {
namespace {

// Collects the lines of one result, from its "ID=" line to just before the next one.
struct result_block {
    std::vector<text::numbered_line> lines;
};

// The body bytes from the first line of `block` to the end of its last non-blank line.
std::string_view block_text(const result_block& block)
{
    const auto& first = block.lines.front();
    std::string_view last = first.text;
    for (const auto& line : block.lines) {
        if (!text::is_blank(line.text)) {
            last = line.text;
        }
    }
    return {first.text.data(),
            static_cast<std::size_t>(last.data() + last.size() - first.text.data())};
}

// Reads one result block, adding a record or rejected lines to `result`.
class block_reader {
  public:
    explicit block_reader(parse_result<command_result>& result) : result_(result) {}

    // Reads `block` (its first line starts with "ID=").
    void read(const result_block& block)
    {
        read_header(block.lines.front().text);
        for (std::size_t i = 1; i < block.lines.size(); ++i) {
            read_line(block.lines[i]);
        }
        std::string reason = check();
        if (!reason.empty()) {
            result_.rejected.push_back(
                {block.lines.front().number, std::string{block_text(block)}, std::move(reason)});
            return;
        }
        record_.return_code = *text::parse_integer<int>(text::trim_spaces(*return_text_));
        finish_content();
        result_.records.push_back(std::move(record_));
        for (auto& rejected : line_rejections_) {
            result_.rejected.push_back(std::move(rejected));
        }
    }

  private:
    // The first line: `ID=..&Return=..&CMD=..`, possibly ending in `&Content=...`.
    void read_header(std::string_view line)
    {
        while (!line.empty() && !in_content_) {
            auto end = line.find('&');
            std::string_view item = line.substr(0, end);
            if (item.starts_with("Content=")) {
                // Content may contain '&': it takes the rest of the line.
                read_pair(line.substr(0, line.find('=')), line.substr(line.find('=') + 1));
                return;
            }
            line = end == std::string_view::npos ? std::string_view{} : line.substr(end + 1);
            if (item.empty()) {
                continue;
            }
            auto equals = item.find('=');
            if (equals == std::string_view::npos) {
                read_pair(item, {});
            } else {
                read_pair(item.substr(0, equals), item.substr(equals + 1));
            }
        }
    }

    // A line after the first: content, or a `key=value` line.
    void read_line(const text::numbered_line& line)
    {
        if (in_content_) {
            content_lines_.push_back(line.text);
            return;
        }
        if (text::is_blank(line.text)) {
            return;
        }
        auto equals = line.text.find('=');
        if (equals == std::string_view::npos) {
            line_rejections_.push_back(
                {line.number, std::string{line.text},
                 "expected key=value in the result of ID=" + text::quote(record_.id)});
            return;
        }
        read_pair(line.text.substr(0, equals), line.text.substr(equals + 1));
    }

    // Files one `key=value` pair: header fields first come, first served; the rest is info.
    void read_pair(std::string_view key, std::string_view value)
    {
        if (key == "ID" && !have_id_) {
            have_id_ = true;
            record_.id.assign(value);
        } else if (key == "Return" && !return_text_) {
            return_text_ = value;
        } else if (key == "CMD" && !have_command_) {
            have_command_ = true;
            record_.command.assign(value);
        } else if (key == "Content" && !in_content_) {
            in_content_ = true;
            content_lines_.push_back(value);
        } else {
            record_.info.push_back({std::string{key}, std::string{value}});
        }
    }

    // Why the result cannot be used; empty when it can.
    std::string check() const
    {
        if (record_.id.empty()) {
            return "empty ID";
        }
        if (!return_text_) {
            return "missing Return";
        }
        if (!text::parse_integer<int>(text::trim_spaces(*return_text_))) {
            return "Return is not a number " + text::quote(*return_text_);
        }
        return {};
    }

    // Joins the content lines with '\n', dropping trailing blank lines.
    void finish_content()
    {
        while (!content_lines_.empty() && content_lines_.back().empty()) {
            content_lines_.pop_back();
        }
        for (std::size_t i = 0; i < content_lines_.size(); ++i) {
            if (i > 0) {
                record_.content += '\n';
            }
            record_.content.append(content_lines_[i]);
        }
    }

    parse_result<command_result>& result_;
    command_result record_;
    bool have_id_ = false;
    bool have_command_ = false;
    bool in_content_ = false;
    std::optional<std::string_view> return_text_;
    std::vector<std::string_view> content_lines_;
    std::vector<rejected_line> line_rejections_;
};

} // namespace

parse_result<command_result> parse_devicecmd(std::string_view body)
{
    parse_result<command_result> result;
    std::optional<result_block> block;
    text::line_reader lines{body};
    while (auto line = lines.next()) {
        if (line->text.starts_with("ID=")) {
            if (block) {
                block_reader{result}.read(*block);
            }
            block.emplace();
            block->lines.push_back(*line);
        } else if (block) {
            block->lines.push_back(*line);
        } else if (!text::is_blank(line->text)) {
            result.rejected.push_back({line->number, std::string{line->text},
                                       "no ID= line before this one " + text::quote(line->text)});
        }
    }
    if (block) {
        block_reader{result}.read(*block);
    }
    return result;
}

std::string_view describe_return_code(int code)
{
    switch (code) {
    case -1:
        return "bad parameter";
    case -3:
        return "read/write error";
    case -10:
        return "user not found";
    case -1001:
        return "capacity exceeded";
    case -1002:
        return "not supported";
    case -1003:
        return "timeout";
    case -1004:
        return "data and configuration inconsistent";
    case -1005:
        return "busy";
    case -1006:
        return "data too long";
    case -1007:
        return "out of memory";
    default:
        return code >= 0 ? "ok" : "failure";
    }
}

} // namespace adms::protocol
