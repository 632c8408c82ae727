// Helpers of the sweep tests: sweep files and base configs written into a temp folder.
#pragma once

#include <pdeq/config/config.h>

#include "test_support.h"

#include <fstream>
#include <string>

namespace pdeq::test {

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

/// A small valid graph base config (no data is read to validate it).
inline std::string cora_base_json() {
  return R"({"model": {"name": "pde_gcn", "channels": 8, "layers": 2},
             "data": {"dataset": "cora"},
             "quant": {"act_bits": 4, "midrise_activations": true, "act_alpha_init": 0.1},
             "train": {"epochs": 3, "optimizer": "adam", "lr": 0.01, "lr_schedule": "constant",
                       "threads": 1, "log_every": 1000}})";
}

}  // namespace pdeq::test
