#include <pdeq/run/tensorboard.h>

#include "train_support.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pdeq::run::Event;

namespace {

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

std::string to_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char c : bytes) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return hex;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Event scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  Event e;
  e.wall_time = wall_time;
  e.step = step;
  e.tag = tag;
  e.scalar = value;
  return e;
}

}  // namespace

TEST(TensorBoard, Crc32cKnownValues) {
  // The CRC-32C check value, and RFC 3720 (iSCSI) B.4: 32 zero bytes, 32 bytes 0xFF.
  EXPECT_EQ(pdeq::run::crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(pdeq::run::crc32c(std::string(32, '\0').data(), 32), 0x8A9136AAu);
  EXPECT_EQ(pdeq::run::crc32c(std::string(32, '\xff').data(), 32), 0x62A8AB43u);
  EXPECT_EQ(pdeq::run::crc32c("", 0), 0u);
  // ((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xa282ead8 mod 2^32, as TensorBoard's masked_crc32c gives.
  EXPECT_EQ(pdeq::run::masked_crc32c("123456789", 9), 0xC78AB0E5u);
}

// Expected bytes written by the protobuf library (tensorboard.compat.proto.event_pb2, SerializeToString) and
// TensorBoard's record framing for the same messages.
TEST(TensorBoard, EventBytesMatchTheProtobufLibrary) {
  EXPECT_EQ(to_hex(pdeq::run::encode_event(scalar_event(1.5, 3, "a", 0.5f))),
            "09000000000000f83f10032a0a0a080a0161150000003f");
  Event version;
  version.file_version = "brain.Event:2";
  EXPECT_EQ(to_hex(pdeq::run::encode_event(version)), "1a0d627261696e2e4576656e743a32");
  Event histogram;
  histogram.step = 2;
  histogram.tag = "h";
  histogram.histogram = pdeq::run::Histogram{-1, 2, 3, 1, 6, {0.5, 2}, {1, 2}};
  EXPECT_EQ(to_hex(pdeq::run::encode_event(histogram)),
            "10022a580a560a01682a5109000000000000f0bf11000000000000004019000000000000084021000000000000f03f29"
            "00000000000018403210000000000000e03f00000000000000403a10000000000000f03f0000000000000040");
}

TEST(TensorBoard, RecordFramingKnownBytes) {
  const std::string payload = from_hex("09000000000000f83f10032a0a0a080a0161150000003f");
  const std::string framed = pdeq::run::frame_record(payload);
  EXPECT_EQ(to_hex(framed), "1700000000000000e7cef81e09000000000000f83f10032a0a0a080a0161150000003fde5768cd");
  bool torn = true;
  const auto back = pdeq::run::unframe_records(framed + framed, "x", &torn);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1], payload);
  EXPECT_FALSE(torn);
  // A record cut short (a writer killed mid-write) is left out; a flipped byte is an error naming the source.
  const auto cut = pdeq::run::unframe_records(framed + framed.substr(0, framed.size() - 3), "x", &torn);
  EXPECT_EQ(cut.size(), 1u);
  EXPECT_TRUE(torn);
  std::string corrupt = framed;
  corrupt[15] ^= 1;
  PDEQ_ASSERT_THROWS_WITH(pdeq::run::unframe_records(corrupt, "events.x", nullptr),
                          "events.x: record at byte 0: payload checksum mismatch");
  corrupt = framed;
  corrupt[0] ^= 1;
  PDEQ_ASSERT_THROWS_WITH(pdeq::run::unframe_records(corrupt, "events.x", nullptr), "length checksum");
}

TEST(TensorBoard, HistogramOfKnownValues) {
  const auto h = pdeq::run::make_histogram(torch::tensor({0.0, 1.0, 1.0, 4.0, std::nan("")}), 4);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->min, 0.0);
  EXPECT_EQ(h->max, 4.0);
  EXPECT_EQ(h->num, 4.0);  // the NaN is left out
  EXPECT_EQ(h->sum, 6.0);
  EXPECT_EQ(h->sum_squares, 18.0);
  EXPECT_EQ(h->bucket_limit, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(h->bucket, (std::vector<double>{1, 2, 0, 1}));  // [0,1) [1,2) [2,3) [3,4]
  const auto constant = pdeq::run::make_histogram(torch::full({2, 3}, 2.5f));
  ASSERT_TRUE(constant.has_value());
  EXPECT_EQ(constant->bucket_limit, (std::vector<double>{2.5}));
  EXPECT_EQ(constant->bucket, (std::vector<double>{6}));
  EXPECT_FALSE(pdeq::run::make_histogram(torch::tensor({std::nanf(""), INFINITY})).has_value());
}

TEST(TensorBoard, ScalarTags) {
  EXPECT_EQ(pdeq::run::scalar_tag("train_loss"), "loss/train");
  EXPECT_EQ(pdeq::run::scalar_tag("val_acc"), "acc/val");
  EXPECT_EQ(pdeq::run::scalar_tag("test_accuracy"), "acc/test");
  EXPECT_EQ(pdeq::run::scalar_tag("test_accuracy_high"), "acc_high/test");
  EXPECT_EQ(pdeq::run::scalar_tag("train_activation_loss"), "activation_loss/train");
  EXPECT_EQ(pdeq::run::scalar_tag("lr"), "lr");
  EXPECT_EQ(pdeq::run::scalar_tag("weight_bits"), "weight_bits");
  EXPECT_EQ(pdeq::run::scalar_tag("train_"), "train_");
}

TEST(TensorBoard, WriterFileRoundTripAndTruncation) {
  pdeq::test::TempDir scratch("tfevents");
  const fs::path folder = scratch.path() / "tb";
  fs::path first;
  {
    pdeq::run::EventFileWriter writer(folder);
    first = writer.path();
    EXPECT_NE(first.filename().string().find("events.out.tfevents."), std::string::npos);
    for (int step = 1; step <= 3; ++step) writer.add_scalar("loss/train", step, 1.0 / step);
    writer.add_histogram("weights/w", 2, *pdeq::run::make_histogram(torch::arange(10.0), 5));
    writer.flush();
    // Flushed records are in the file before the writer closes it.
    EXPECT_EQ(pdeq::run::read_event_file(first).size(), 5u);
    writer.add_scalar("lr", 3, 0.1);
  }
  auto events = pdeq::run::read_event_file(first);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_GT(events[0].wall_time, 1.6e9);
  EXPECT_EQ(events[2].tag, "loss/train");
  EXPECT_EQ(events[2].step, 2);
  EXPECT_EQ(*events[2].scalar, 0.5f);
  ASSERT_TRUE(events[4].histogram.has_value());
  EXPECT_EQ(events[4].histogram->bucket, (std::vector<double>{2, 2, 2, 2, 2}));
  EXPECT_EQ(events[4].histogram->sum, 45.0);
  EXPECT_EQ(*events[5].scalar, 0.1f);

  // Steps >= 3 go (a resume at epoch 3), the rest stays byte for byte; a torn tail goes with them.
  { std::ofstream(first, std::ios::app | std::ios::binary) << std::string("\x20\x00\x00", 3); }
  pdeq::run::truncate_event_files(folder, 3);
  events = pdeq::run::read_event_file(first);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].tag, "weights/w");
  const std::string kept = read_all(first);
  EXPECT_EQ(pdeq::run::unframe_records(kept, "kept").size(), 4u);
  // Nothing left but the version record: the file goes.
  pdeq::run::truncate_event_files(folder, 1);
  EXPECT_TRUE(pdeq::run::event_files(folder).empty());
}
