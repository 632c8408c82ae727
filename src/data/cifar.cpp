// CIFAR-10 / CIFAR-100 binary-version readers: whole files read into one uint8 tensor, then validated.
#include <pdeq/data/image_set.h>


#include <cstdint>
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
  const char* title;            ///< for messages: "CIFAR-10"
  const char* slug;             ///< ImageSet::name prefix: "cifar10"
  int64_t label_bytes;          ///< 1 (label) or 2 (coarse, fine)
  std::vector<int64_t> label_limits;  ///< exclusive upper bound of each label byte
  std::vector<std::string> train_files, test_files;
  const char* expected;         ///< the file list, for messages

  int64_t record_bytes() const { return label_bytes + kPixelBytes; }
};

const CifarFormat& cifar10_format() {
  static const CifarFormat format{
      "CIFAR-10", "cifar10", 1, {10},
      {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
      {"test_batch.bin"},
      "data_batch_1.bin ... data_batch_5.bin and test_batch.bin"};
  return format;
}

const CifarFormat& cifar100_format() {
  static const CifarFormat format{"CIFAR-100", "cifar100", 2, {20, 100}, {"train.bin"}, {"test.bin"},
                                  "train.bin and test.bin"};
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

/// Reads exactly `bytes` bytes of `path` into `dst` in one call.
void read_whole_file(const std::string& path, const std::string& title, uint8_t* dst, int64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(title + " file " + path + " could not be opened for reading");
  in.read(reinterpret_cast<char*>(dst), bytes);
  if (in.gcount() != bytes) {
    fail(title + " file " + path + " ended after " + std::to_string(in.gcount()) + " bytes, expected " +
         std::to_string(bytes) + " (the file changed or is truncated)");
  }
}

/// Label bytes within range, checked on the raw records (before any conversion) so the message can name the record.
void expect_labels_in_range(const CifarFormat& format, const std::string& path, const uint8_t* records,
                            int64_t count) {
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t k = 0; k < format.label_bytes; ++k) {
      const int64_t label = records[r * format.record_bytes() + k];
      const int64_t limit = format.label_limits[static_cast<size_t>(k)];
      if (label >= limit) {
        fail(std::string(format.title) + " file " + path + ": record " + std::to_string(r) + " has label " +
             std::to_string(label) + (format.label_bytes > 1 ? (k == 0 ? " (coarse)" : " (fine)") : "") +
             ", expected 0.." + std::to_string(limit - 1) + " (not a " + format.title + " binary file?)");
      }
    }
  }
}

ImageSet read_cifar(const CifarFormat& format, const std::string& root, Split split) {
  const auto& names = split == Split::kTrain ? format.train_files : format.test_files;
  std::vector<std::string> paths;
  for (const auto& name : names) paths.push_back((fs::path(root) / name).string());
  const auto counts = expect_record_counts(format, root, paths);

  int64_t total = 0;
  for (auto c : counts) total += c;
  auto records = torch::empty({total, format.record_bytes()}, torch::kUInt8);
  uint8_t* cursor = records.data_ptr<uint8_t>();
  for (size_t f = 0; f < paths.size(); ++f) {
    const int64_t bytes = counts[f] * format.record_bytes();
    read_whole_file(paths[f], format.title, cursor, bytes);
    expect_labels_in_range(format, paths[f], cursor, counts[f]);
    cursor += bytes;
  }

  ImageSet set;
  set.images = records.narrow(1, format.label_bytes, kPixelBytes).contiguous().view({total, kChannels, kSide, kSide});
  set.labels = records.select(1, format.label_bytes - 1).to(torch::kInt64);
  set.num_classes = format.label_limits.back();
  set.name = std::string(format.slug) + (split == Split::kTrain ? "/train" : "/test");
  return set;
}

}  // namespace

ImageSet read_cifar10(const std::string& root, Split split) { return read_cifar(cifar10_format(), root, split); }

ImageSet read_cifar100(const std::string& root, Split split) { return read_cifar(cifar100_format(), root, split); }

}  // namespace pdeq::data
