// Shared pieces of the libFuzzer targets: a per-process scratch folder, splitting one input into several
// files, and the error policy every target enforces.
//
// Policy: a reader may reject any input, but only with the error type of its layer, i.e. std::runtime_error
// (config::ConfigError derives from it). Anything else escaping (std::invalid_argument, nlohmann's
// exceptions, c10::Error, std::bad_alloc, std::length_error) is a defect: libFuzzer reports the uncaught
// exception as a crash, as it does for ASan/UBSan findings, leaks and hangs.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pdeq::fuzz {

/// Separates the files of one input ("<file 1>\nPDEQFILE\n<file 2>..."); tests/fuzz/pdeq.dict lists it.
inline const std::string kSeparator = "\nPDEQFILE\n";

/// The first `n` parts of `data` split at kSeparator; missing parts are empty.
inline std::vector<std::string> split_files(const uint8_t* data, size_t size, size_t n) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t begin = 0;
  while (parts.size() + 1 < n) {
    const size_t at = text.find(kSeparator, begin);
    if (at == std::string::npos) break;
    parts.push_back(text.substr(begin, at - begin));
    begin = at + kSeparator.size();
  }
  parts.push_back(text.substr(std::min(begin, text.size())));
  parts.resize(n);
  return parts;
}

/// A folder of this process's own under the temp directory, made empty once; each input overwrites the files
/// it uses (and removes the ones it must not leave behind).
inline std::filesystem::path scratch(const std::string& tag) {
  static const std::filesystem::path root = [&] {
    const auto path =
        std::filesystem::temp_directory_path() / ("pdeq_fuzz_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return path;
  }();
  return root;
}

inline void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

/// Runs `read`; a std::runtime_error is a clean rejection, anything else propagates (a defect).
template <typename F>
void expect_clean_rejection(F&& read) {
  try {
    read();
  } catch (const std::runtime_error&) {
  }
}

}  // namespace pdeq::fuzz
