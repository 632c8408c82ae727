// The library entry point behind `pdeq sweep`: a sweep file in, run folders and a report out.
#pragma once

#include <pdeq/sweep/report.h>
#include <pdeq/sweep/runner.h>
#include <pdeq/sweep/search.h>
#include <pdeq/sweep/spec.h>

#include <filesystem>
#include <string>

namespace pdeq::sweep {

/// load_sweep + expand_sweep (every point validated) + run_sweep into `out`, then, unless a dry run or
/// nothing has finished, write_report over the sweep's points into <out>/report (with a search: the best
/// trial per configuration of the points/grid keys). Example:
///   auto outcome = pdeq::sweep::run_sweep_file("configs/sweeps/cora_pdegcn_cpu.json", "runs/sweep1",
///                                              {"/usr/bin/pdeq", /*jobs=*/2});
SweepOutcome run_sweep_file(const std::string& sweep_file, const std::filesystem::path& out,
                            const RunnerOptions& options);

}  // namespace pdeq::sweep
