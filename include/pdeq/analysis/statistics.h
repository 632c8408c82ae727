// Mean, sample standard deviation and median of repeated results (seeds of one run, points of one sweep row,
// rounds of a benchmark).
#pragma once

#include <algorithm>
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

/// The middle value (the upper one of the two middle values for an even count); 0 for no values.
inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace pdeq::analysis
