// Replay driver for the fuzz targets when libFuzzer (clang) is not available: runs every file of
// the corpus folders given on the command line, then deterministic mutations of each (byte
// flips, boundary values, truncations, duplications, insertions), so the parsers still see
// hostile input under the project compiler. Exit code 0 when every input returns.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::uint64_t next(std::uint64_t& s)
{
    s += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void run(const std::string& bytes)
{
    // A copy in its own allocation, so that out-of-bounds reads are as visible as they can be.
    std::vector<std::uint8_t> buf(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
}

std::string mutate(std::string s, std::uint64_t& state)
{
    const int steps = 1 + static_cast<int>(next(state) % 4);
    for (int k = 0; k < steps; ++k) {
        const std::size_t at = s.empty() ? 0 : next(state) % s.size();
        switch (next(state) % 8) {
        case 0: // flip a bit
            if (!s.empty()) {
                s[at] = static_cast<char>(s[at] ^ (1 << (next(state) % 8)));
            }
            break;
        case 1: // boundary 32-bit value, big- or little-endian
        {
            static const std::uint32_t values[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff,
                1000000000, 0x10000 };
            const std::uint32_t v = values[next(state) % 7];
            for (int b = 0; b < 4 && at + b < s.size(); ++b) {
                s[at + b] = static_cast<char>(v >> (8 * (3 - b)));
            }
            break;
        }
        case 2: // truncate
            s.resize(at);
            break;
        case 3: // duplicate a chunk
            if (!s.empty()) {
                s.insert(at, s.substr(at, 1 + next(state) % 16));
            }
            break;
        case 4: // insert random bytes
            for (int i = 0, n = 1 + static_cast<int>(next(state) % 8); i < n; ++i) {
                s.insert(s.begin() + static_cast<std::ptrdiff_t>(std::min(at, s.size())),
                    static_cast<char>(next(state)));
            }
            break;
        case 5: // a digit becomes a long number (text formats)
            if (!s.empty()) {
                s.insert(at, "99999999999");
            }
            break;
        case 6: // erase a byte
            if (!s.empty()) {
                s.erase(at, 1);
            }
            break;
        default: // set a byte to 0 or 0xff
            if (!s.empty()) {
                s[at] = static_cast<char>((next(state) & 1) != 0 ? 0xff : 0);
            }
            break;
        }
    }
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> seeds;
    int mutations = 2000;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("-mutations=", 0) == 0) {
            mutations = std::stoi(arg.substr(11));
            continue;
        }
        if (!arg.empty() && arg[0] == '-') {
            continue; // libFuzzer flags (-max_total_time=...) are accepted and ignored
        }
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(arg, ec)) {
            std::ifstream in(e.path(), std::ios::binary);
            seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    if (seeds.empty()) {
        std::fprintf(stderr, "FuzzReplay: no seed files\n");
        return 1;
    }
    std::uint64_t state = 12345;
    std::size_t runs = 0;
    for (const std::string& s : seeds) {
        run(s);
        ++runs;
        for (int m = 0; m < mutations; ++m) {
            run(mutate(s, state));
            ++runs;
        }
    }
    std::printf("FuzzReplay: %zu inputs from %zu seeds, all returned\n", runs, seeds.size());
    return 0;
}
