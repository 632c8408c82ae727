// Shared helpers of the training-level tests: scratch folders and a tiny CIFAR-10-format dataset on disk.
#pragma once

#include "test_support.h"

#include <pdeq/config/config.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace pdeq::test {

/// Writes data_batch_1..5.bin and test_batch.bin with `per_file` random 32x32 RGB records whose class is
/// encoded in the image (a bright square in a class-dependent corner), so a model can learn it.
inline void write_tiny_cifar10(const std::filesystem::path& root, int per_file, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  auto write = [&](const std::string& name) {
    std::ofstream out(root / name, std::ios::binary);
    for (int r = 0; r < per_file; ++r) {
      const auto label = static_cast<uint8_t>(rng() % 10);
      std::vector<uint8_t> record(3073);
      record[0] = label;
      for (size_t i = 1; i < record.size(); ++i) record[i] = static_cast<uint8_t>(rng() % 128);
      const int y0 = (label / 5) * 16, x0 = (label % 5) * 6;
      for (int c = 0; c < 3; ++c)
        for (int y = y0; y < y0 + 8; ++y)
          for (int x = x0; x < x0 + 6; ++x) record[1 + c * 1024 + y * 32 + x] = 255;
      out.write(reinterpret_cast<const char*>(record.data()), static_cast<std::streamsize>(record.size()));
    }
  };
  for (int i = 1; i <= 5; ++i) write("data_batch_" + std::to_string(i) + ".bin");
  write("test_batch.bin");
}

/// A small, fast config on the tiny dataset: resnet20 at W4A4, 2 epochs.
inline config::Config tiny_cifar_config(const std::filesystem::path& root) {
  config::Config c;
  c.source = "tiny";
  c.data.dataset = "cifar10";
  c.data.root = root.string();
  c.data.val_size = 64;
  c.data.batch_size = 32;
  c.data.eval_batch_size = 64;
  c.quant.weight_bits = 4;
  c.quant.act_bits = 4;
  c.train.epochs = 2;
  c.train.lr = 0.05;
  c.train.threads = 2;
  c.train.log_every = 1000;
  return c;
}

}  // namespace pdeq::test
