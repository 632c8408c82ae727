#include <pdeq/run/tensorboard.h>

#include <pdeq/run/run_dir.h>

#include "read_file.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace pdeq::run {
namespace fs = std::filesystem;

namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reversed 0x1EDC6F41
    table[i] = c;
  }
  return table;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_le(const std::string& bytes, size_t at, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// Protobuf wire format: a field is a varint key (number << 3 | wire type) and its value.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }

// Fields at their default (0, empty) are left out, as proto3 serializers do, so the bytes are those the
// protobuf library writes for the same message.
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (bits == 0) return;
  put_key(out, field, kFixed64);
  put_u64(out, bits);
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_packed_doubles(std::string& out, uint32_t field, const std::vector<double>& values) {
  if (values.empty()) return;
  std::string packed;
  for (const double v : values) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    put_u64(packed, bits);
  }
  put_bytes(out, field, packed);
}

std::string encode_histogram(const Histogram& h) {
  std::string out;
  put_double(out, 1, h.min);
  put_double(out, 2, h.max);
  put_double(out, 3, h.num);
  put_double(out, 4, h.sum);
  put_double(out, 5, h.sum_squares);
  put_packed_doubles(out, 6, h.bucket_limit);
  put_packed_doubles(out, 7, h.bucket);
  return out;
}

/// Reads the fields of one message; `visit(field, type, reader)` consumes each field's value.
class WireReader {
 public:
  explicit WireReader(const std::string& bytes) : bytes_(bytes) {}
  bool done() const { return at_ >= bytes_.size(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto byte = static_cast<unsigned char>(bytes_[at_++]);
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    throw std::runtime_error("protobuf: varint longer than 10 bytes");
  }
  double fixed64_double() {
    need(8);
    const uint64_t bits = get_le(bytes_, at_, 8);
    at_ += 8;
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  float fixed32_float() {
    need(4);
    const auto bits = static_cast<uint32_t>(get_le(bytes_, at_, 4));
    at_ += 4;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string bytes() {
    const uint64_t size = varint();
    need(size);
    std::string v = bytes_.substr(at_, size);
    at_ += size;
    return v;
  }
  void skip(uint32_t type) {
    switch (type) {
      case kVarint:
        varint();
        return;
      case kFixed64:
        need(8);
        at_ += 8;
        return;
      case kBytes:
        bytes();
        return;
      case kFixed32:
        need(4);
        at_ += 4;
        return;
      default:
        throw std::runtime_error("protobuf: unsupported wire type " + std::to_string(type));
    }
  }

 private:
  void need(uint64_t n) const {
    if (n > bytes_.size() - at_) throw std::runtime_error("protobuf: message ends inside a field");
  }
  const std::string& bytes_;
  size_t at_ = 0;
};

std::vector<double> packed_doubles(const std::string& packed) {
  if (packed.size() % 8 != 0) throw std::runtime_error("protobuf: packed doubles of odd length");
  std::vector<double> values;
  WireReader reader(packed);
  while (!reader.done()) values.push_back(reader.fixed64_double());
  return values;
}

Histogram decode_histogram(const std::string& bytes) {
  Histogram h;
  WireReader r(bytes);
  while (!r.done()) {
    const uint64_t key = r.varint();
    const auto field = static_cast<uint32_t>(key >> 3), type = static_cast<uint32_t>(key & 7);
    if (field >= 1 && field <= 5 && type == kFixed64) {
      double* targets[] = {&h.min, &h.max, &h.num, &h.sum, &h.sum_squares};
      *targets[field - 1] = r.fixed64_double();
    } else if ((field == 6 || field == 7) && type == kBytes) {
      (field == 6 ? h.bucket_limit : h.bucket) = packed_doubles(r.bytes());
    } else {
      r.skip(type);
    }
  }
  return h;
}

void decode_value(const std::string& bytes, Event& event) {
  WireReader r(bytes);
  while (!r.done()) {
    const uint64_t key = r.varint();
    const auto field = static_cast<uint32_t>(key >> 3), type = static_cast<uint32_t>(key & 7);
    if (field == 1 && type == kBytes) {
      event.tag = r.bytes();
    } else if (field == 2 && type == kFixed32) {
      event.scalar = r.fixed32_float();
    } else if (field == 5 && type == kBytes) {
      event.histogram = decode_histogram(r.bytes());
    } else {
      r.skip(type);
    }
  }
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t crc = 0xFFFFFFFFu;
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_record(const std::string& payload) {
  std::string out;
  put_u64(out, payload.size());
  put_u32(out, masked_crc32c(out.data(), 8));
  out += payload;
  put_u32(out, masked_crc32c(payload.data(), payload.size()));
  return out;
}

std::vector<std::string> unframe_records(const std::string& bytes, const std::string& source,
                                         bool* torn_tail) {
  std::vector<std::string> payloads;
  if (torn_tail != nullptr) *torn_tail = false;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 12) break;
    const uint64_t length = get_le(bytes, at, 8);
    if (static_cast<uint32_t>(get_le(bytes, at + 8, 4)) != masked_crc32c(bytes.data() + at, 8)) {
      throw std::runtime_error(source + ": record at byte " + std::to_string(at) +
                               ": length checksum mismatch (not a TFRecord file, or corrupt)");
    }
    if (length > bytes.size() - at - 12 || bytes.size() - at - 12 - length < 4) break;
    std::string payload = bytes.substr(at + 12, length);
    if (static_cast<uint32_t>(get_le(bytes, at + 12 + length, 4)) !=
        masked_crc32c(payload.data(), payload.size())) {
      throw std::runtime_error(source + ": record at byte " + std::to_string(at) +
                               ": payload checksum mismatch");
    }
    payloads.push_back(std::move(payload));
    at += 12 + length + 4;
  }
  if (at < bytes.size() && torn_tail != nullptr) *torn_tail = true;
  return payloads;
}

std::optional<Histogram> make_histogram(const at::Tensor& values, int64_t buckets) {
  TORCH_CHECK_VALUE(buckets >= 1, "histogram buckets must be >= 1, but got ", buckets);
  auto x = values.detach().to(at::kCPU, at::kDouble).flatten();
  x = x.masked_select(at::isfinite(x));
  if (x.numel() == 0) return std::nullopt;
  Histogram h;
  h.min = x.min().item<double>();
  h.max = x.max().item<double>();
  h.num = static_cast<double>(x.numel());
  h.sum = x.sum().item<double>();
  h.sum_squares = x.square().sum().item<double>();
  if (h.min == h.max) {
    h.bucket_limit = {h.max};
    h.bucket = {h.num};
    return h;
  }
  const auto counts = at::histc(x, buckets, h.min, h.max);
  const auto* c = counts.data_ptr<double>();
  for (int64_t i = 0; i < buckets; ++i) {
    h.bucket_limit.push_back(i + 1 == buckets ? h.max : h.min + (h.max - h.min) * (i + 1) / buckets);
    h.bucket.push_back(c[i]);
  }
  return h;
}

std::string encode_event(const Event& event) {
  std::string out;
  put_double(out, 1, event.wall_time);
  if (event.step != 0) {
    put_key(out, 2, kVarint);
    put_varint(out, static_cast<uint64_t>(event.step));
  }
  if (!event.file_version.empty()) put_bytes(out, 3, event.file_version);
  if (event.scalar || event.histogram) {
    std::string value;
    put_bytes(value, 1, event.tag);
    if (event.scalar) {
      put_key(value, 2, kFixed32);
      uint32_t bits;
      const float v = *event.scalar;
      std::memcpy(&bits, &v, sizeof bits);
      put_u32(value, bits);
    }
    if (event.histogram) put_bytes(value, 5, encode_histogram(*event.histogram));
    std::string summary;
    put_bytes(summary, 1, value);
    put_bytes(out, 5, summary);
  }
  return out;
}

Event decode_event(const std::string& payload) {
  Event event;
  WireReader r(payload);
  while (!r.done()) {
    const uint64_t key = r.varint();
    const auto field = static_cast<uint32_t>(key >> 3), type = static_cast<uint32_t>(key & 7);
    if (field == 1 && type == kFixed64) {
      event.wall_time = r.fixed64_double();
    } else if (field == 2 && type == kVarint) {
      event.step = static_cast<int64_t>(r.varint());
    } else if (field == 3 && type == kBytes) {
      event.file_version = r.bytes();
    } else if (field == 5 && type == kBytes) {
      const std::string summary = r.bytes();
      WireReader s(summary);
      while (!s.done()) {
        const uint64_t k = s.varint();
        if ((k >> 3) == 1 && (k & 7) == kBytes) {
          decode_value(s.bytes(), event);
        } else {
          s.skip(static_cast<uint32_t>(k & 7));
        }
      }
    } else {
      r.skip(type);
    }
  }
  return event;
}

std::vector<Event> read_event_file(const fs::path& path) {
  std::vector<Event> events;
  for (const auto& payload : unframe_records(detail::read_file(path), path.string())) {
    try {
      events.push_back(decode_event(payload));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path.string() + ": event " + std::to_string(events.size()) + ": " + e.what());
    }
  }
  return events;
}

std::vector<fs::path> event_files(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.find("tfevents") != std::string::npos && name.find(".tmp.") == std::string::npos &&
        it->is_regular_file(error)) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string scalar_tag(const std::string& key) {
  for (const std::string split : {"train", "val", "test"}) {
    if (key.rfind(split + "_", 0) == 0 && key.size() > split.size() + 1) {
      std::string metric = key.substr(split.size() + 1);
      if (metric.rfind("accuracy", 0) == 0) metric = "acc" + metric.substr(8);
      return metric + "/" + split;
    }
  }
  return key;
}

void truncate_event_files(const fs::path& folder, int64_t step_limit) {
  for (const auto& file : event_files(folder)) {
    bool torn = false;
    const auto payloads = unframe_records(detail::read_file(file), file.string(), &torn);
    std::string kept;
    size_t kept_events = 0, data_events = 0;
    for (const auto& payload : payloads) {
      const Event event = decode_event(payload);
      if (event.file_version.empty() && event.step >= step_limit) continue;
      kept += frame_record(payload);
      ++kept_events;
      if (event.file_version.empty()) ++data_events;
    }
    if (data_events == 0) {
      fs::remove(file);
    } else if (torn || kept_events != payloads.size()) {
      atomic_write_file(file, kept);
    }
  }
}

EventFileWriter::EventFileWriter(const fs::path& folder) {
  fs::create_directories(folder);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  path_ = folder / ("events.out.tfevents." +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count()) + "." +
                    host_name() + "." + std::to_string(::getpid()));
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr)
    throw std::runtime_error("cannot write " + path_.string() + ": " + std::strerror(errno));
  Event version;
  version.file_version = "brain.Event:2";
  add(version);
  flush();
}

EventFileWriter::~EventFileWriter() {
  try {
    flush();
  } catch (const std::exception&) {
    // A destructor must not throw; the caller flushes explicitly where a failure matters.
  }
  std::fclose(file_);
}

void EventFileWriter::add(const Event& event) {
  Event stamped = event;
  stamped.wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  pending_ += frame_record(encode_event(stamped));
}

void EventFileWriter::add_scalar(const std::string& tag, int64_t step, double value) {
  Event event;
  event.step = step;
  event.tag = tag;
  event.scalar = static_cast<float>(value);
  add(event);
}

void EventFileWriter::add_histogram(const std::string& tag, int64_t step, const Histogram& histogram) {
  Event event;
  event.step = step;
  event.tag = tag;
  event.histogram = histogram;
  add(event);
}

void EventFileWriter::flush() {
  if (pending_.empty()) return;
  // One fwrite and fflush: the records reach the kernel together, so a process killed after flush() loses
  // none of them (fsync is left out: a power cut may cost the last epochs' events, which the metrics keep).
  const bool ok =
      std::fwrite(pending_.data(), 1, pending_.size(), file_) == pending_.size() && std::fflush(file_) == 0;
  pending_.clear();
  if (!ok) throw std::runtime_error("cannot write " + path_.string() + ": " + std::strerror(errno));
}

}  // namespace pdeq::run
