// CIFAR-10 / CIFAR-100 binary-version readers: sizes checked up front, records read in large chunks straight
// into the dataset tensors, labels validated on the way.
#include <pdeq/data/image_set.h>

#include "memory.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pdeq::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072: 1024 R, 1024 G, 1024 B, rows of 32

/// One variant of the binary format: `label_bytes` leading label bytes per record, the used one last.
struct CifarFormat {
  const char* title;                  ///< for messages: "CIFAR-10"
  const char* slug;                   ///< ImageSet::name prefix: "cifar10"
  int64_t label_bytes;                ///< 1 (label) or 2 (coarse, fine)
  std::vector<int64_t> label_limits;  ///< exclusive upper bound of each label byte
  std::vector<std::string> train_files, test_files;
  const char* expected;  ///< the file list, for messages

  int64_t record_bytes() const { return label_bytes + kPixelBytes; }
};

const CifarFormat& cifar10_format() {
  static const CifarFormat format{
      "CIFAR-10",
      "cifar10",
      1,
      {10},
      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
      {"test_batch.bin"},
      "data_batch_1.bin ... data_batch_5.bin and test_batch.bin"};
  return format;
}

const CifarFormat& cifar100_format() {
  static const CifarFormat format{
      "CIFAR-100", "cifar100", 2, {20, 100}, {"train.bin"}, {"test.bin"}, "train.bin and test.bin"};
  return format;
}

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

/// Every file of the split exists and holds a whole, non-zero number of records; returns their record counts.
std::vector<int64_t> expect_record_counts(const CifarFormat& format, const std::string& root,
                                          const std::vector<std::string>& paths) {
  std::vector<int64_t> counts;
  for (const auto& path : paths) {
    std::error_code error;
    if (!fs::is_regular_file(path, error)) {
      fail(std::string(format.title) + " file not found: " + path + " (expected " + format.expected + " in " +
           root + "; set data.root to the folder that holds them)");
    }
    const auto bytes = static_cast<int64_t>(fs::file_size(path, error));
    if (error || bytes == 0 || bytes % format.record_bytes() != 0) {
      fail(std::string(format.title) + " file " + path + " has " + std::to_string(bytes) +
           " bytes, expected a non-zero multiple of " + std::to_string(format.record_bytes()) + " (" +
           std::to_string(format.label_bytes) + " label byte(s) + " + std::to_string(kPixelBytes) +
           " pixel bytes per image): truncated, or not the binary version of the dataset");
    }
    counts.push_back(bytes / format.record_bytes());
  }
  return counts;
}

/// Records per read: 3 MiB, reused for every chunk, so that only the final tensors are ever faulted in.
constexpr int64_t kChunkRecords = 1024;

[[noreturn]] void fail_label(const CifarFormat& format, const std::string& path, int64_t record, int64_t k,
                             int64_t label) {
  const int64_t limit = format.label_limits[static_cast<size_t>(k)];
  fail(std::string(format.title) + " file " + path + ": record " + std::to_string(record) + " has label " +
       std::to_string(label) + (format.label_bytes > 1 ? (k == 0 ? " (coarse)" : " (fine)") : "") +
       ", expected 0.." + std::to_string(limit - 1) + " (not a " + format.title + " binary file?)");
}

ImageSet read_cifar(const CifarFormat& format, const std::string& root, Split split) {
  const auto& names = split == Split::kTrain ? format.train_files : format.test_files;
  std::vector<std::string> paths;
  for (const auto& name : names) paths.push_back((fs::path(root) / name).string());
  const auto counts = expect_record_counts(format, root, paths);

  int64_t total = 0;
  for (auto c : counts) total += c;
  const int64_t record_bytes = format.record_bytes();
  auto images = detail::empty_for_dataset({total, kChannels, kSide, kSide}, torch::kUInt8);
  auto labels = torch::empty({total}, torch::kInt64);
  uint8_t* pixels = images.data_ptr<uint8_t>();
  int64_t* label_out = labels.data_ptr<int64_t>();
  std::vector<uint8_t> chunk(static_cast<size_t>(kChunkRecords * record_bytes));

  int64_t row = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    std::ifstream in(paths[f], std::ios::binary);
    if (!in) fail(std::string(format.title) + " file " + paths[f] + " could not be opened for reading");
    for (int64_t first = 0; first < counts[f]; first += kChunkRecords) {
      const int64_t n = std::min(kChunkRecords, counts[f] - first);
      in.read(reinterpret_cast<char*>(chunk.data()), n * record_bytes);
      if (in.gcount() != n * record_bytes) {
        fail(std::string(format.title) + " file " + paths[f] + " ended early: expected " +
             std::to_string(counts[f] * record_bytes) + " bytes (the file changed while being read)");
      }
      for (int64_t r = 0; r < n; ++r, ++row) {
        const uint8_t* record = chunk.data() + r * record_bytes;
        for (int64_t k = 0; k < format.label_bytes; ++k) {
          if (record[k] >= format.label_limits[static_cast<size_t>(k)]) {
            fail_label(format, paths[f], first + r, k, record[k]);
          }
        }
        label_out[row] = record[format.label_bytes - 1];  // CIFAR-100: the fine label
        std::memcpy(pixels + row * kPixelBytes, record + format.label_bytes, kPixelBytes);
      }
    }
  }

  ImageSet set;
  set.images = images;
  set.labels = labels;
  set.num_classes = format.label_limits.back();
  set.name = std::string(format.slug) + (split == Split::kTrain ? "/train" : "/test");
  return set;
}

}  // namespace

ImageSet read_cifar10(const std::string& root, Split split) {
  return read_cifar(cifar10_format(), root, split);
}

ImageSet read_cifar100(const std::string& root, Split split) {
  return read_cifar(cifar100_format(), root, split);
}

}  // namespace pdeq::data
