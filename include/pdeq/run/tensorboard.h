// TensorBoard event files: TFRecord framing of `Event` protocol buffers, written by a small encoder of the
// protobuf wire format and read back by a matching decoder (tests, and the truncation a resume needs).
//
// Why no libprotobuf: the five messages TensorBoard needs here (Event, Summary, Summary.Value,
// HistogramProto) use six scalar fields, a string and two packed arrays; encoding them is ~80 lines, while
// generated code would add protoc to the build, a copy of TensorFlow's .proto files to the tree and a runtime
// library to every consumer of pdeq for the same bytes. The tests pin the bytes to hand-encoded values and a
// round trip, and scripts/check_tensorboard.sh reads the files with TensorBoard's own reader.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::run {

/// CRC-32C (Castagnoli polynomial, reflected, as TFRecord): crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t size);
/// TFRecord's masked checksum: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);

/// One TFRecord: payload length (uint64, little-endian), masked CRC-32C of those 8 bytes, the payload, masked
/// CRC-32C of the payload.
std::string frame_record(const std::string& payload);
/// The payloads of a TFRecord stream. A checksum mismatch or a length running past a complete record throws
/// naming `source` and the byte offset; an incomplete last record (a writer killed mid-write) is left out, as
/// TensorBoard's reader does, and `*torn_tail` (when given) says so.
std::vector<std::string> unframe_records(const std::string& bytes, const std::string& source,
                                         bool* torn_tail = nullptr);

/// HistogramProto: buckets of equal width between min and max, bucket_limit[i] the right edge of bucket i.
struct Histogram {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit, bucket;
};
/// The histogram of the finite values of `values` (any shape, dtype, device) in `buckets` equal-width buckets
/// (one bucket when all values are equal); std::nullopt when no value is finite.
std::optional<Histogram> make_histogram(const at::Tensor& values, int64_t buckets = 30);

/// The subset of tensorflow.Event pdeq writes: the file-version record, or one summary value (a scalar or a
/// histogram) at a step.
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;  ///< set only in a file's first record ("brain.Event:2")
  std::string tag;
  std::optional<float> scalar;
  std::optional<Histogram> histogram;
};
std::string encode_event(const Event& event);
/// Decodes what encode_event writes; fields it does not know are skipped, a malformed message throws.
Event decode_event(const std::string& payload);

/// Every event of one event file, in order (the torn last record left out).
std::vector<Event> read_event_file(const std::filesystem::path& path);
/// The event files in `folder` (names containing "tfevents"), sorted by name, which is their time order.
std::vector<std::filesystem::path> event_files(const std::filesystem::path& folder);

/// The tag of a metrics key: "train_X" -> "X/train", "val_X" -> "X/val", "test_X" -> "X/test" (so that the
/// splits of one metric share a section in TensorBoard) with "accuracy" written "acc" (summary.json's
/// test_accuracy next to the metrics' train_acc and val_acc); other keys are their own tag ("lr").
std::string scalar_tag(const std::string& key);

/// Drops the events with step >= `step_limit` from every event file in `folder` (each rewritten atomically,
/// only if something goes), and files left with nothing but their version record. A resume calls it with
/// the first epoch it trains again, so that no step appears twice; as truncate_metrics does for the rows.
void truncate_event_files(const std::filesystem::path& folder, int64_t step_limit);

/// Appends events to a new file `<folder>/events.out.tfevents.<seconds>.<host>.<pid>` (the name TensorBoard
/// looks for; the pid keeps two sessions started in the same second apart). Records are buffered until
/// flush(), which writes them with one write() call: a process killed later loses only unflushed events.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::filesystem::path& folder);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void add_scalar(const std::string& tag, int64_t step, double value);
  void add_histogram(const std::string& tag, int64_t step, const Histogram& histogram);
  /// Writes the buffered records to the file.
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void add(const Event& event);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::string pending_;
};

}  // namespace pdeq::run
