// Whole-file reads of the run folder's files (internal).
#pragma once

#include <filesystem>
#include <string>

namespace pdeq::run::detail {

/// The bytes of `path`; std::runtime_error "cannot read <path>" if it cannot be opened.
std::string read_file(const std::filesystem::path& path);

}  // namespace pdeq::run::detail
