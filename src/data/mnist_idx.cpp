// (Fashion-)MNIST IDX reader. zlib's gz* functions read gzip-compressed and plain files alike, so one code
// path serves both `train-images-idx3-ubyte.gz` and an uncompressed `train-images-idx3-ubyte`.
#include <pdeq/data/image_set.h>

#include "byte_order.h"
#include "memory.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

namespace pdeq::data {
namespace {

namespace fs = std::filesystem;

// IDX magic numbers: 0x00 0x00 <type 0x08 = unsigned byte> <number of dimensions>.
constexpr uint32_t kImagesMagic = 0x00000803;  // 2051: uint8, 3 dimensions (count, rows, columns)
constexpr uint32_t kLabelsMagic = 0x00000801;  // 2049: uint8, 1 dimension (count)
constexpr int64_t kNumClasses = 10;
constexpr int64_t kMaxSide = 1 << 14;                   // sanity bound on rows/columns of a header
constexpr int64_t kMaxPayloadBytes = int64_t{1} << 34;  // 16 GiB: larger headers are garbage, not data

const char* const kExpectedFiles =
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
    "t10k-labels-idx1-ubyte[.gz]";

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

/// An open gz stream that closes itself; every failure names the file.
class GzReader {
 public:
  GzReader(std::string path, std::string title) : path_(std::move(path)), title_(std::move(title)) {
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) fail(title_ + " IDX file " + path_ + " could not be opened for reading");
    gzbuffer(file_, 1 << 18);  // fewer, larger reads than the 8 KiB default
  }
  ~GzReader() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to `bytes` bytes into `dst`, fewer only at the end of the data.
  int64_t read(uint8_t* dst, int64_t bytes) {
    int64_t done = 0;
    while (done < bytes) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(bytes - done, int64_t{1} << 30));
      const int got = gzread(file_, dst + done, chunk);
      if (got < 0) {
        int code = 0;
        fail(title_ + " IDX file " + path_ + " could not be decompressed: " + gzerror(file_, &code));
      }
      if (got == 0) break;
      done += got;
    }
    return done;
  }

  /// Exactly `bytes` bytes, or an error saying what `what` was expected.
  void read_exact(uint8_t* dst, int64_t bytes, const std::string& what) {
    const int64_t got = read(dst, bytes);
    if (got != bytes) {
      fail(title_ + " IDX file " + path_ + " is truncated: expected " + std::to_string(bytes) + " bytes of " +
           what + ", got " + std::to_string(got));
    }
  }

  /// Big-endian 32-bit header fields.
  template <size_t N>
  std::array<uint32_t, N> read_header(const std::string& what) {
    std::array<uint8_t, 4 * N> raw{};
    read_exact(raw.data(), static_cast<int64_t>(raw.size()), what);
    std::array<uint32_t, N> fields{};
    for (size_t i = 0; i < N; ++i) {
      fields[i] = detail::big_endian32(raw.data() + 4 * i);
    }
    return fields;
  }

  /// Nothing may follow the payload the header declared.
  void expect_end(const std::string& declared) {
    uint8_t extra = 0;
    if (read(&extra, 1) != 0) {
      fail(title_ + " IDX file " + path_ + " holds more data than its header declares (" + declared + ")");
    }
  }

  /// An uncompressed file's size is known up front: reject a truncated or oversized one before allocating.
  void expect_size_if_plain(int64_t total_bytes, int64_t header_bytes, const std::string& declared) {
    if (gzdirect(file_) != 1) return;
    std::error_code error;
    const auto bytes = static_cast<int64_t>(fs::file_size(path_, error));
    if (!error && bytes != total_bytes) {
      fail(title_ + " IDX file " + path_ + " has " + std::to_string(bytes) + " bytes, expected " +
           std::to_string(total_bytes) + " (" + std::to_string(header_bytes) + "-byte header + " + declared +
           ")");
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_, title_;
  gzFile file_ = nullptr;
};

/// `<root>/<base>.gz` if present, else `<root>/<base>`, else an error listing the files expected.
std::string expect_idx_file(const std::string& root, const std::string& base, const std::string& title) {
  const fs::path gz = fs::path(root) / (base + ".gz");
  const fs::path plain = fs::path(root) / base;
  std::error_code error;
  if (fs::is_regular_file(gz, error)) return gz.string();
  if (fs::is_regular_file(plain, error)) return plain.string();
  fail(title + " file not found: " + gz.string() + " (expected " + kExpectedFiles + " in " + root +
       "; set data.root to the folder that holds them)");
}

void expect_magic(const GzReader& file, uint32_t magic, uint32_t expected, const std::string& title,
                  const std::string& meaning) {
  if (magic != expected) {
    fail(title + " IDX file " + file.path() + " has magic number " + std::to_string(magic) + ", expected " +
         std::to_string(expected) + " (" + meaning + ")");
  }
}

}  // namespace

ImageSet read_mnist_idx(const std::string& root, Split split, const std::string& name) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  // Both files are located before either is read, so a missing one is reported before a slow decompression.
  const std::string images_path = expect_idx_file(root, prefix + "-images-idx3-ubyte", name);
  const std::string labels_path = expect_idx_file(root, prefix + "-labels-idx1-ubyte", name);

  // Labels first: the small file fixes the count the images file must match.
  GzReader labels_file(labels_path, name);
  // The magic number is checked before the rest of the header is read, so that a wrong file (say images and
  // labels swapped) is reported as such rather than as truncated.
  expect_magic(labels_file, labels_file.read_header<1>("magic number")[0], kLabelsMagic, name,
               "IDX labels: unsigned bytes, 1 dimension");
  const int64_t count = labels_file.read_header<1>("header (count)")[0];
  labels_file.expect_size_if_plain(8 + count, 8, std::to_string(count) + " labels");
  auto labels_u8 = torch::empty({count}, torch::kUInt8);
  labels_file.read_exact(labels_u8.data_ptr<uint8_t>(), count,
                         "labels (" + std::to_string(count) + " declared)");
  labels_file.expect_end(std::to_string(count) + " labels");
  const uint8_t* label_data = labels_u8.data_ptr<uint8_t>();
  for (int64_t i = 0; i < count; ++i) {
    if (label_data[i] >= kNumClasses) {
      fail(name + " IDX file " + labels_path + ": label " + std::to_string(int{label_data[i]}) +
           " at index " + std::to_string(i) + ", expected 0.." + std::to_string(kNumClasses - 1));
    }
  }

  GzReader images_file(images_path, name);
  expect_magic(images_file, images_file.read_header<1>("magic number")[0], kImagesMagic, name,
               "IDX images: unsigned bytes, 3 dimensions");
  const auto image_header = images_file.read_header<3>("header (count, rows, columns)");
  const int64_t image_count = image_header[0], rows = image_header[1], cols = image_header[2];
  if (image_count != count) {
    fail(name + " IDX file " + images_path + " holds " + std::to_string(image_count) + " images but " +
         labels_path + " holds " + std::to_string(count) + " labels, expected equal counts");
  }
  if (rows < 1 || rows > kMaxSide || cols < 1 || cols > kMaxSide) {
    fail(name + " IDX file " + images_path + " declares images of " + std::to_string(rows) + "x" +
         std::to_string(cols) + ", expected sides in 1.." + std::to_string(kMaxSide));
  }
  const int64_t payload = count * rows * cols;
  const std::string declared =
      std::to_string(count) + " images of " + std::to_string(rows) + "x" + std::to_string(cols);
  if (payload > kMaxPayloadBytes) {
    fail(name + " IDX file " + images_path + " declares " + declared + ": implausibly large");
  }
  images_file.expect_size_if_plain(16 + payload, 16, declared);
  auto images = detail::empty_for_dataset({count, 1, rows, cols}, torch::kUInt8);
  images_file.read_exact(images.data_ptr<uint8_t>(), payload, "pixels (" + declared + ")");
  images_file.expect_end(declared);

  ImageSet set;
  set.images = images;
  set.labels = labels_u8.to(torch::kInt64);
  set.num_classes = kNumClasses;
  set.name = name + (split == Split::kTrain ? "/train" : "/test");
  return set;
}

}  // namespace pdeq::data
