// The CIFAR-10 and CIFAR-100 binary readers (test split: one file each).
#include <pdeq/data/image_set.h>

#include "fuzz_support.h"

// Input: one byte (even: CIFAR-10 test_batch.bin, odd: CIFAR-100 test.bin), then the file's contents.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool hundred = data[0] & 1;
  const auto dir = pdeq::fuzz::scratch("cifar");
  std::filesystem::remove(dir / "test.bin");
  std::filesystem::remove(dir / "test_batch.bin");
  pdeq::fuzz::write_file(dir / (hundred ? "test.bin" : "test_batch.bin"),
                         std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  pdeq::fuzz::expect_clean_rejection([&] {
    if (hundred) {
      pdeq::data::read_cifar100(dir.string(), pdeq::data::Split::kTest);
    } else {
      pdeq::data::read_cifar10(dir.string(), pdeq::data::Split::kTest);
    }
  });
  return 0;
}
