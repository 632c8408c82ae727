// Mean and sample standard deviation of repeated results (seeds of one run, points of one sweep row).
#pragma once

#include <cmath>
#include <vector>

namespace pdeq::analysis {

/// Arithmetic mean; 0 for no values.
inline double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
inline double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace pdeq::analysis
