// The checkpoint loader: whole checkpoint files, and well-formed archives with a fuzzed training state.
#include <pdeq/run/checkpoint.h>

#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>

#include <cstdlib>
#include <sstream>

#include "fuzz_support.h"

namespace {

struct Subject {
  torch::nn::Linear model{torch::nn::LinearOptions(4, 3)};
  torch::optim::SGD optimizer{model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)};
};

/// A valid checkpoint of Subject (what pdeq writes), for the seed corpus.
std::string valid_checkpoint(const std::filesystem::path& dir) {
  Subject s;
  s.optimizer.zero_grad();
  s.model->forward(torch::ones({2, 4})).sum().backward();
  s.optimizer.step();
  pdeq::run::TrainingState state;
  state.epoch = 2;
  pdeq::run::save_checkpoint(dir / "seed.pt", *s.model, &s.optimizer, state);
  std::ifstream in(dir / "seed.pt", std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

// PDEQ_FUZZ_SEED_DIR=<dir>: write the seed inputs there and exit (scripts/fuzz.sh does this once).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seeds = std::getenv("PDEQ_FUZZ_SEED_DIR")) {
    const auto dir = pdeq::fuzz::scratch("checkpoint_seed");
    pdeq::fuzz::write_file(std::filesystem::path(seeds) / "valid_checkpoint", "\x00" + valid_checkpoint(dir));
    pdeq::fuzz::write_file(std::filesystem::path(seeds) / "valid_state",
                           std::string("\x01") + pdeq::run::TrainingState().to_json().dump());
    std::exit(0);
  }
  return 0;
}

// Input: one byte; 0: the rest is a checkpoint file; 1: the rest is the "state" JSON of an otherwise valid
// checkpoint (TrainingState::from_json).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto dir = pdeq::fuzz::scratch("checkpoint");
  const auto path = dir / "last.pt";
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    Subject s;
    torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
    s.model->save(model_archive);
    s.optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("state", c10::IValue(rest));
    archive.write("cpu_rng", at::detail::getDefaultCPUGenerator().get_state());
    archive.save_to(path.string());
  } else {
    pdeq::fuzz::write_file(path, rest);
  }
  Subject target;
  pdeq::fuzz::expect_clean_rejection(
      [&] { pdeq::run::load_checkpoint(path, *target.model, &target.optimizer); });
  return 0;
}
