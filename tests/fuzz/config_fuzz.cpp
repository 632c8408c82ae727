// The config parser with overrides: load_config(file, --set values), then the round trip
// to_json/parse_config.
#include <pdeq/config/config.h>

#include <cstdlib>
#include <sstream>

#include "fuzz_support.h"

// Input: the config file, then "\nPDEQFILE\n", then one --set assignment per line.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = pdeq::fuzz::split_files(data, size, 2);
  const auto dir = pdeq::fuzz::scratch("config");
  const auto path = (dir / "config.json").string();
  pdeq::fuzz::write_file(path, parts[0]);
  std::vector<std::string> overrides;
  std::istringstream lines(parts[1]);
  for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  pdeq::fuzz::expect_clean_rejection([&] {
    const pdeq::config::Config config = pdeq::config::load_config(path, overrides);
    // Whatever parses must survive its own resolved form unchanged.
    const pdeq::config::Config again =
        pdeq::config::parse_config(pdeq::config::to_json(config), "round trip");
    if (again != config) std::abort();
  });
  pdeq::fuzz::expect_clean_rejection([&] { pdeq::config::config_from_overrides(overrides); });
  return 0;
}
