// The Planetoid reader: meta.txt and the nine flat arrays of one graph.
#include <pdeq/data/planetoid.h>

#include "fuzz_support.h"

namespace {
const char* const kParts[] = {"meta.txt",   "feat.indptr.i64", "feat.indices.i64", "feat.data.f32",
                              "labels.i64", "edges.i64",       "selfloops.i64",    "train.i64",
                              "val.i64",    "test.i64"};
}  // namespace

// Input: the ten files in kParts order, separated by "\nPDEQFILE\n".
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kCount = sizeof kParts / sizeof kParts[0];
  const auto parts = pdeq::fuzz::split_files(data, size, kCount);
  const auto root = pdeq::fuzz::scratch("planetoid");
  std::filesystem::create_directories(root / "cora");
  for (size_t i = 0; i < kCount; ++i) {
    pdeq::fuzz::write_file(root / "cora" / (std::string("cora.") + kParts[i]), parts[i]);
  }
  pdeq::fuzz::expect_clean_rejection([&] { pdeq::data::load_planetoid(root.string(), "cora"); });
  return 0;
}
