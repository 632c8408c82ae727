// Enum-like config values: every name parses to its value and back, and files spell them by name.
#include <pdeq/config/choices.h>
#include <pdeq/config/config.h>

#include "test_support.h"

namespace pdeq::config {
namespace {

template <class E>
void expect_round_trip() {
  ASSERT_FALSE(choices<E>().empty());
  for (const auto& [value, name] : choices<E>()) {
    EXPECT_EQ(to_string(value), name);
    EXPECT_EQ(from_string<E>(name), value);
  }
}

TEST(ChoicesTest, EveryNameRoundTrips) {
  expect_round_trip<TVWeight>();
  expect_round_trip<TVPlacement>();
  expect_round_trip<Transpose>();
  expect_round_trip<Stem>();
  expect_round_trip<GraphInit>();
  expect_round_trip<EdgeActivation>();
  expect_round_trip<EdgeWeights>();
  expect_round_trip<Optimizer>();
  expect_round_trip<LrSchedule>();
  expect_round_trip<MemoryFormat>();
  expect_round_trip<Precision>();
}

TEST(ChoicesTest, UnknownNameListsTheNames) {
  PDEQ_ASSERT_THROWS_WITH(from_string<Optimizer>("rmsprop"),
                          "expected one of sgd, adam, adamw, got \"rmsprop\"");
  EXPECT_EQ(choice_names<Precision>(), (std::vector<std::string>{"fp32", "bf16"}));
}

TEST(ChoicesTest, FilesSpellValuesByNameBothWays) {
  const Config c =
      parse_config(nlohmann::json::parse(R"({"train": {"optimizer": "adamw", "precision": "bf16"},
      "model": {"stem": "imagenet", "tv": {"where": "input"}}, "data": {"edge_weights": "similarity"}})"),
                   "x.json");
  EXPECT_EQ(c.train.optimizer, Optimizer::kAdamW);
  EXPECT_EQ(c.train.precision, Precision::kBf16);
  EXPECT_EQ(c.model.stem, Stem::kImageNet);
  EXPECT_EQ(c.model.tv.where, TVPlacement::kInput);
  EXPECT_EQ(c.data.edge_weights, EdgeWeights::kSimilarity);
  const auto json = to_json(c);
  EXPECT_EQ(json["train"]["optimizer"], "adamw");
  EXPECT_EQ(json["model"]["tv"]["where"], "input");
  EXPECT_EQ(parse_config(json, "again"), c);
}

TEST(ChoicesTest, GraphKeysStayDirectlyUnderModelInFiles) {
  const Config c =
      parse_config(nlohmann::json::parse(R"({"model": {"layers": 8, "graph_init": "glorot"}})"), "x.json");
  EXPECT_EQ(c.model.graph.layers, 8);
  EXPECT_EQ(c.model.graph.init, GraphInit::kGlorot);
  const auto json = to_json(c);
  EXPECT_EQ(json["model"]["layers"], 8);
  EXPECT_EQ(json["model"]["graph_init"], "glorot");
  EXPECT_FALSE(json["model"].contains("graph"));
}

TEST(ChoicesTest, ReferenceListsEveryKeyWithItsDefaultAndRule) {
  const std::string reference = reference_markdown();
  EXPECT_NE(reference.find("| `train.optimizer` | `\"sgd\"` | one of \"sgd\", \"adam\", \"adamw\" |"),
            std::string::npos)
      << reference;
  EXPECT_NE(reference.find("| `train.epochs` | `200` | an integer >= 1 |"), std::string::npos);
  EXPECT_NE(reference.find("| `model.tv.where` |"), std::string::npos);
  EXPECT_NE(reference.find("| `quant.schedule.start_bits` | `16` | an integer in [2, 32] |"),
            std::string::npos);
  // One row per key of to_json's document.
  size_t keys = 0;
  const std::function<void(const nlohmann::json&)> count = [&](const nlohmann::json& j) {
    for (const auto& item : j.items()) item.value().is_object() ? count(item.value()) : void(++keys);
  };
  count(to_json(Config{}));
  size_t rows = 0;
  for (size_t at = reference.find("\n| `"); at != std::string::npos; at = reference.find("\n| `", at + 1))
    ++rows;
  EXPECT_EQ(rows, keys);
}

}  // namespace
}  // namespace pdeq::config
