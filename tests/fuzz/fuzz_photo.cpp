// libFuzzer target: protocol::parse_photo_upload (ATTPHOTO / fdata uploads).

#include "protocol/photo.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <functional>

using namespace adms::protocol;

namespace {

// True when `part` lies inside `whole` (the parser promises views into the body).
bool points_into(std::string_view part, std::string_view whole)
{
    std::less_equal<const char*> le;
    return part.empty() || (le(whole.data(), part.data()) &&
                            le(part.data() + part.size(), whole.data() + whole.size()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto upload = parse_photo_upload(body);
    auto nul = body.find('\0');
    if (nul == std::string_view::npos) {
        // "Returns nullopt when there is no NUL".
        FUZZ_CHECK(!upload);
        return 0;
    }
    if (!upload) {
        return 0;
    }
    // The image is everything after the first NUL; the headers come before it.
    FUZZ_CHECK(upload->bytes == body.substr(nul + 1));
    FUZZ_CHECK(upload->bytes.data() == body.data() + nul + 1);
    FUZZ_CHECK(!upload->file_name.empty());
    FUZZ_CHECK(points_into(upload->file_name, body.substr(0, nul)));
    // file_name is the first PIN= header.
    bool found = false;
    for (const auto& header : upload->headers) {
        FUZZ_CHECK(header.key.find_first_of(std::string_view{"\n\0", 2}) == std::string::npos);
        FUZZ_CHECK(header.value.find_first_of(std::string_view{"\n\0", 2}) == std::string::npos);
        if (!found && header.key == "PIN" && !header.value.empty()) {
            FUZZ_CHECK(header.value == upload->file_name);
            found = true;
        }
    }
    FUZZ_CHECK(found);
    return 0;
}
