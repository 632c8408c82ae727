// Helpers for the data tests: a temporary folder and writers of tiny CIFAR binary and IDX files.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include "test_support.h"

#include <unistd.h>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pdeq::test {

using Bytes = std::vector<uint8_t>;

inline void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "could not write " << path;
}

inline void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << "could not open " << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

/// The pixel value test files use for image `id`, channel-major flat position `p`: every image differs, and
/// the first pixel of image `id` is `id % 256`.
inline uint8_t test_pixel(int64_t id, int64_t p) { return static_cast<uint8_t>((id + 7 * p) % 256); }

/// CIFAR records for images first_id .. first_id+labels.size()-1: the label bytes, then test_pixel() values.
/// `coarse` non-empty: CIFAR-100 records (coarse byte, fine byte).
inline Bytes cifar_records(int64_t first_id, const std::vector<int>& labels,
                           const std::vector<int>& coarse = {}) {
  Bytes bytes;
  for (size_t r = 0; r < labels.size(); ++r) {
    if (!coarse.empty()) bytes.push_back(static_cast<uint8_t>(coarse[r]));
    bytes.push_back(static_cast<uint8_t>(labels[r]));
    for (int64_t p = 0; p < 3072; ++p) bytes.push_back(test_pixel(first_id + static_cast<int64_t>(r), p));
  }
  return bytes;
}

inline void put_be32(Bytes& bytes, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(v >> shift));
}

/// IDX images file (magic 2051) of `count` images rows x cols holding test_pixel(first_id + i, p).
inline Bytes idx_images(int64_t count, int64_t rows, int64_t cols, int64_t first_id = 0,
                        uint32_t magic = 2051) {
  Bytes bytes;
  put_be32(bytes, magic);
  put_be32(bytes, static_cast<uint32_t>(count));
  put_be32(bytes, static_cast<uint32_t>(rows));
  put_be32(bytes, static_cast<uint32_t>(cols));
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < rows * cols; ++p) bytes.push_back(test_pixel(first_id + i, p));
  }
  return bytes;
}

/// IDX labels file (magic 2049).
inline Bytes idx_labels(const std::vector<int>& labels, uint32_t magic = 2049) {
  Bytes bytes;
  put_be32(bytes, magic);
  put_be32(bytes, static_cast<uint32_t>(labels.size()));
  for (int l : labels) bytes.push_back(static_cast<uint8_t>(l));
  return bytes;
}

/// A CIFAR-10 folder: data_batch_1..5 with `per_file` images each (ids 0..5*per_file-1, label id % 10) and a
/// test_batch with `test` images (ids 1000.., label id % 10).
inline void write_cifar10_folder(const TempDir& dir, int per_file, int test) {
  for (int f = 0; f < 5; ++f) {
    std::vector<int> labels;
    for (int r = 0; r < per_file; ++r) labels.push_back((f * per_file + r) % 10);
    write_file(dir.file("data_batch_" + std::to_string(f + 1) + ".bin"), cifar_records(f * per_file, labels));
  }
  std::vector<int> labels;
  for (int r = 0; r < test; ++r) labels.push_back((1000 + r) % 10);
  write_file(dir.file("test_batch.bin"), cifar_records(1000, labels));
}

}  // namespace pdeq::test
