// Hyper-parameter search: range mapping by hand, samples within their ranges, reproducible, and the
// expansion of trials into points.
#include <pdeq/sweep/search.h>
#include <pdeq/sweep/spec.h>

#include "sweep_support.h"

#include <cmath>
#include <set>

namespace pdeq::test {
namespace {

using nlohmann::json;
using sweep::SearchParam;

SearchParam param(SearchParam::Kind kind, double low, double high) {
  SearchParam p;
  p.key = "k";
  p.kind = kind;
  p.low = low;
  p.high = high;
  return p;
}

TEST(SweepSearch, MapUnitByHand) {
  EXPECT_DOUBLE_EQ(sweep::map_unit(param(SearchParam::Kind::kUniform, 0, 10), 0.25).get<double>(), 2.5);
  EXPECT_NEAR(sweep::map_unit(param(SearchParam::Kind::kLogUniform, 1e-4, 1e-2), 0.5).get<double>(), 1e-3,
              1e-15);
  const auto ints = param(SearchParam::Kind::kIntUniform, 4, 16);
  EXPECT_EQ(sweep::map_unit(ints, 0.0).get<int64_t>(), 4);
  EXPECT_EQ(sweep::map_unit(ints, 0.9999).get<int64_t>(), 16);   // high is included
  EXPECT_EQ(sweep::map_unit(ints, 1.0 / 13).get<int64_t>(), 5);  // 13 equal cells
  SearchParam choice;
  choice.kind = SearchParam::Kind::kChoice;
  choice.choices = {"adam", "sgd", "adamw"};
  EXPECT_EQ(sweep::map_unit(choice, 0.5), "sgd");
  EXPECT_EQ(sweep::map_unit(choice, 0.99), "adamw");
}

sweep::SearchSpec all_kinds(const std::string& sampler, uint64_t seed, int64_t trials) {
  return sweep::parse_search(json::parse(R"({"trials": )" + std::to_string(trials) + R"(, "sampler": ")" +
                                         sampler + R"(", "seed": )" + std::to_string(seed) + R"(,
      "params": {"train.lr": {"log_uniform": [1e-4, 0.1]}, "model.dropout": {"uniform": [0.1, 0.8]},
                 "model.layers": {"int_uniform": [4, 16]}, "train.optimizer": {"choice": ["adam", "sgd"]}}})"),
                             "s.json");
}

TEST(SweepSearch, SamplesLieInTheirRangesAndAreReproducible) {
  for (const std::string sampler : {"random", "halton"}) {
    const auto spec = all_kinds(sampler, 7, 200);
    ASSERT_EQ(spec.params.size(), 4u);
    ASSERT_EQ(spec.params[0].key, "model.dropout");  // sorted by key
    const auto trials = sweep::sample_trials(spec);
    ASSERT_EQ(trials.size(), 200u);
    std::set<int64_t> layers;
    std::set<std::string> optimizers;
    double lr_min = 1, lr_max = 0;
    for (const auto& t : trials) {
      ASSERT_EQ(t.size(), 4u);
      EXPECT_GE(t[0].get<double>(), 0.1);
      EXPECT_LT(t[0].get<double>(), 0.8);
      ASSERT_TRUE(t[1].is_number_integer()) << t[1];
      layers.insert(t[1].get<int64_t>());
      EXPECT_GE(t[2].get<double>(), 1e-4);
      EXPECT_LT(t[2].get<double>(), 0.1);
      lr_min = std::min(lr_min, t[2].get<double>());
      lr_max = std::max(lr_max, t[2].get<double>());
      optimizers.insert(t[3].get<std::string>());
    }
    EXPECT_EQ(*layers.begin(), 4) << sampler;
    EXPECT_EQ(*layers.rbegin(), 16) << sampler;
    EXPECT_EQ(layers.size(), 13u) << sampler;
    EXPECT_EQ(optimizers.size(), 2u) << sampler;
    // Log-uniform: 200 samples reach both decades' ends (a uniform draw would almost never go below 1e-3).
    EXPECT_LT(lr_min, 2e-4) << sampler;
    EXPECT_GT(lr_max, 5e-2) << sampler;
    EXPECT_EQ(sweep::sample_trials(all_kinds(sampler, 7, 200)), trials) << sampler;
    EXPECT_NE(sweep::sample_trials(all_kinds(sampler, 8, 200)), trials) << sampler;
  }
}

TEST(SweepSearch, HaltonIsTheVanDerCorputSequenceInTheFirstParam) {
  auto spec = sweep::parse_search(
      json::parse(
          R"({"trials": 4, "sampler": "halton", "params": {"a": {"uniform": [0, 1]}, "b": {"uniform": [0, 1]}}})"),
      "s.json");
  const auto trials = sweep::sample_trials(spec);
  const double base2[] = {0.5, 0.25, 0.75, 0.125}, base3[] = {1.0 / 3, 2.0 / 3, 1.0 / 9, 4.0 / 9};
  for (size_t t = 0; t < 4; ++t) {
    EXPECT_DOUBLE_EQ(trials[t][0].get<double>(), base2[t]);
    EXPECT_DOUBLE_EQ(trials[t][1].get<double>(), base3[t]);
  }
}

TEST(SweepSearch, ParseErrorsNameTheKey) {
  PDEQ_ASSERT_THROWS_WITH(
      sweep::parse_search(json::parse(R"({"trials": 3, "params": {"train.lr": {"log_uniform": [0, 1]}}})"),
                          "s.json"),
      "s.json: search.params.train.lr.log_uniform: expected 0 < low < high, got [0,1]");
  PDEQ_ASSERT_THROWS_WITH(
      sweep::parse_search(json::parse(R"({"trials": 3, "params": {"train.lr": {"normal": [0, 1]}}})"),
                          "s.json"),
      "s.json: search.params.train.lr: normal: unknown range (allowed: uniform, log_uniform, int_uniform, "
      "choice)");
  PDEQ_ASSERT_THROWS_WITH(
      sweep::parse_search(json::parse(R"({"params": {"a": {"uniform": [0, 1]}}})"), "s.json"),
      "s.json: search.trials: missing");
  PDEQ_ASSERT_THROWS_WITH(
      sweep::parse_search(
          json::parse(R"({"trials": 2, "sampler": "tpe", "params": {"a": {"uniform": [0, 1]}}})"), "s.json"),
      "s.json: search.sampler: expected one of \"random\", \"halton\", got \"tpe\"");
}

TEST(SweepSearch, TrialsExpandPerConfigurationWithTheSameCandidates) {
  TempDir dir("sweep_search");
  write_text(dir.path() / "base.json", cora_base_json());
  write_text(dir.path() / "s.json",
             R"({"base": "base.json", "grid": {"model.name": ["pde_gcn", "pde_gcn_nonsym"]},
    "search": {"trials": 3, "seed": 1, "params": {"train.lr": {"log_uniform": [1e-3, 1e-1]},
                                                  "model.dropout": {"uniform": [0, 0.5]}}}})");
  const auto points = sweep::expand_sweep(sweep::load_sweep(dir.file("s.json")));
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0].name, "model.name=pde_gcn,trial=0");
  EXPECT_EQ(points[5].name, "model.name=pde_gcn_nonsym,trial=2");
  EXPECT_EQ(points[5].configuration_keys, std::vector<std::string>{"model.name"});
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(points[t].config.train.lr, points[3 + t].config.train.lr);
    EXPECT_EQ(points[t].config.model.graph.dropout, points[3 + t].config.model.graph.dropout);
    EXPECT_GE(points[t].config.train.lr, 1e-3);
    EXPECT_LT(points[t].config.train.lr, 1e-1);
    EXPECT_LT(points[t].config.model.graph.dropout, 0.5);
  }
  EXPECT_NE(points[0].config.train.lr, points[1].config.train.lr);
}

}  // namespace
}  // namespace pdeq::test
