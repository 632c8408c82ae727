#include <pdeq/commands/bench_infer.h>

namespace pdeq::commands {

BenchInferResult bench_infer(const BenchInferOptions& options) {
  return {deploy::bench_infer(options.model, options.bench)};
}

}  // namespace pdeq::commands
