// The run-folder readers: metrics.jsonl (read, truncate on resume), summary.json, config.json.
#include <pdeq/config/config.h>
#include <pdeq/run/run_dir.h>

#include "fuzz_support.h"

// Input: metrics.jsonl, "\nPDEQFILE\n", summary.json, "\nPDEQFILE\n", config.json.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = pdeq::fuzz::split_files(data, size, 3);
  const auto dir = pdeq::fuzz::scratch("run_dir");
  pdeq::run::RunDirectory run(dir);
  pdeq::fuzz::write_file(run.metrics_path(), parts[0]);
  pdeq::fuzz::write_file(run.summary_path(), parts[1]);
  pdeq::fuzz::write_file(run.config_path(), parts[2]);
  pdeq::fuzz::expect_clean_rejection([&] { run.read_metrics(); });
  pdeq::fuzz::expect_clean_rejection([&] { run.truncate_metrics(2); });
  pdeq::fuzz::expect_clean_rejection([&] { run.read_json(run.summary_path()); });
  pdeq::fuzz::expect_clean_rejection([&] { pdeq::config::load_config(run.config_path().string()); });
  return 0;
}
