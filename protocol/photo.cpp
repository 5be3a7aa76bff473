#include "protocol/photo.hpp"

#include "protocol/text.hpp"

namespace adms::protocol {

std::optional<photo_upload> parse_photo_upload(std::string_view body)
{
    auto nul = body.find('\0');
    if (nul == std::string_view::npos) {
        return std::nullopt;
    }
    photo_upload upload;
    upload.bytes = body.substr(nul + 1);
    text::line_reader lines{body.substr(0, nul)};
    while (auto line = lines.next()) {
        auto eq = line->text.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        auto key = line->text.substr(0, eq);
        auto value = line->text.substr(eq + 1);
        if (key == "PIN" && upload.file_name.empty()) {
            upload.file_name = value;
        }
        upload.headers.push_back({std::string{key}, std::string{value}});
    }
    if (upload.file_name.empty()) {
        return std::nullopt;
    }
    return upload;
}

} // namespace adms::protocol
