// The checkout's paths, for tests that read shipped configs or the shared data (defined in the generated
// test_paths.cpp).
#pragma once

#include <string>

namespace pdeq::test {

/// The source tree's root (configs/, scripts/ ...).
std::string source_dir();
/// `../shared/data` next to the source tree.
std::string shared_data_dir();

}  // namespace pdeq::test
