// The (Fashion-)MNIST IDX reader, plain and gzip: labels file and images file of the test split.
#include <pdeq/data/image_set.h>

#include "fuzz_support.h"

// Input: one flag byte (bit 0: labels file named .gz, bit 1: images file named .gz; zlib reads plain data
// behind a .gz name too), then the labels file, "\nPDEQFILE\n", the images file.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const auto parts = pdeq::fuzz::split_files(data + 1, size - 1, 2);
  const auto dir = pdeq::fuzz::scratch("idx");
  for (const char* name : {"t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte",
                           "t10k-images-idx3-ubyte.gz"}) {
    std::filesystem::remove(dir / name);
  }
  pdeq::fuzz::write_file(dir / ((flags & 1) ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte"),
                         parts[0]);
  pdeq::fuzz::write_file(dir / ((flags & 2) ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte"),
                         parts[1]);
  pdeq::fuzz::expect_clean_rejection(
      [&] { pdeq::data::read_mnist_idx(dir.string(), pdeq::data::Split::kTest, "fashion_mnist"); });
  return 0;
}
