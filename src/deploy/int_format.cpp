#include <pdeq/deploy/int_format.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace pdeq::deploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kHeaderBytes = 24;
constexpr size_t kChecksumBytes = 8;
/// Larger graph descriptions or tensors than this are corrupt, not real networks.
constexpr uint64_t kMaxGraphBytes = uint64_t{1} << 28;
constexpr int64_t kMaxDims = 8;

uint64_t fnv1a(const char* data, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

template <typename T>
void put(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <typename T>
T get(const std::string& in, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<T>(static_cast<unsigned char>(in[offset + i])) << (8 * i);
  return value;
}

struct DtypeName {
  c10::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kInt8, "int8"}, {torch::kFloat, "float32"}, {torch::kDouble, "float64"}};

const char* dtype_name(c10::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw std::runtime_error(std::string("cannot store tensors of type ") + c10::toString(type));
}

/// Appends the tensor's bytes to `data` and describes where they are.
json put_tensor(const torch::Tensor& t, std::string& data) {
  const torch::Tensor c = t.contiguous().cpu();
  const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
  json ref = {{"dtype", dtype_name(c.scalar_type())},
              {"shape", c.sizes().vec()},
              {"offset", data.size()},
              {"bytes", bytes}};
  data.append(static_cast<const char*>(c.data_ptr()), bytes);  // x86: little-endian already
  return ref;
}

/// Reads one op or meta field, naming the op and the field when it is missing or of the wrong type.
class Reader {
 public:
  Reader(const std::string& name, const std::string& data, size_t data_offset)
      : name_(name), data_(data), data_offset_(data_offset) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw std::runtime_error(name_ + ": " + where + ": " + what);
  }

  template <typename T>
  T field(const json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end()) fail(where, std::string("missing field '") + key + "'");
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      integer<T>(*it, key, where);
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      if (it->is_array()) {
        for (const auto& entry : *it) integer<int64_t>(entry, key, where);
      }
    }
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      fail(where, std::string("field '") + key + "' has the wrong type");
    }
  }

  /// nlohmann's get<integer>() casts a float (undefined behaviour beyond the type's range) and wraps integers
  /// of the other signedness: an integer field must be a JSON integer that fits T.
  template <typename T>
  void integer(const json& value, const char* key, const std::string& where) const {
    const bool fits =
        std::is_unsigned_v<T>
            ? value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0)
            : value.is_number_integer() &&
                  (!value.is_number_unsigned() || value.get<uint64_t>() <= uint64_t{INT64_MAX});
    if (!fits) {
      std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
      if (text.size() > 40) text = text.substr(0, 37) + "...";
      fail(where, std::string("field '") + key + "' must be " +
                      (std::is_unsigned_v<T> ? "a non-negative integer" : "an integer") + ", got " + text);
    }
  }

  torch::Tensor tensor(const json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return {};
    const std::string field_where = where + ", field '" + key + "'";
    if (!it->is_object()) fail(field_where, "expected a tensor reference");
    const auto dtype = field<std::string>(*it, "dtype", field_where);
    const auto shape = field<std::vector<int64_t>>(*it, "shape", field_where);
    const auto offset = field<uint64_t>(*it, "offset", field_where);
    const auto bytes = field<uint64_t>(*it, "bytes", field_where);
    c10::ScalarType type = torch::kByte;
    bool known = false;
    for (const auto& d : kDtypes) {
      if (dtype == d.name) {
        type = d.type;
        known = true;
      }
    }
    if (!known) fail(field_where, "unknown dtype '" + dtype + "'");
    if (static_cast<int64_t>(shape.size()) > kMaxDims) fail(field_where, "too many dimensions");
    uint64_t numel = 1;
    for (const int64_t s : shape) {
      if (s < 0 || s > (int64_t{1} << 31)) fail(field_where, "bad shape entry " + std::to_string(s));
      numel *= static_cast<uint64_t>(s);
      if (numel > (uint64_t{1} << 34)) fail(field_where, "shape too large");
    }
    const uint64_t size = c10::elementSize(type);
    if (numel * size != bytes) {
      fail(field_where,
           "expected " + std::to_string(numel * size) + " bytes for the shape, got " + std::to_string(bytes));
    }
    const uint64_t available = data_.size() - data_offset_;
    if (offset > available || bytes > available - offset) {
      fail(field_where, "tensor data [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                            ") lies outside the " + std::to_string(available) +
                            " bytes of tensor data at byte " + std::to_string(data_offset_));
    }
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
    if (bytes > 0) std::memcpy(t.data_ptr(), data_.data() + data_offset_ + offset, bytes);
    return t;
  }

 private:
  const std::string& name_;
  const std::string& data_;
  size_t data_offset_;
};

}  // namespace

void save_int_graph(const IntGraph& graph, const fs::path& path) {
  graph.validate_with_meta(path.string());  // never a file that load_int_graph refuses
  std::string data;
  json ops = json::array();
  for (const auto& op : graph.ops) {
    json o = {{"kind", op_kind_name(op.kind)},
              {"name", op.name},
              {"inputs", op.inputs},
              {"output", op.output},
              {"stride", op.stride},
              {"padding", op.padding},
              {"relu", op.relu},
              {"max_pool", op.max_pool},
              {"out_scale", op.out_scale},
              {"out_zero_point", op.out_zero_point},
              {"qmax", op.qmax},
              {"weight_bits", op.weight_bits}};
    if (op.groups != 1) o["groups"] = op.groups;  // absent: 1 (files without grouped convolutions)
    if (op.weight.defined()) o["weight"] = put_tensor(op.weight, data);
    if (op.weight_scale.defined()) o["weight_scale"] = put_tensor(op.weight_scale, data);
    if (op.bias.defined()) o["bias"] = put_tensor(op.bias, data);
    if (op.kind == OpKind::kTvSmooth) {
      o["tau"] = put_tensor(op.tau, data);
      o["tv_iters"] = op.tv_iters;
      o["tv_eps"] = op.tv_eps;
      o["tv_weight"] = op.tv_weight;
    }
    ops.push_back(std::move(o));
  }
  const std::string out = frame_int_file(json{{"meta", graph.meta}, {"ops", ops}}.dump(), data);

  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw std::runtime_error("cannot open " + tmp.string() + " for writing");
    file.write(out.data(), static_cast<std::streamsize>(out.size()));
    if (!file) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string frame_int_file(const std::string& description, const std::string& tensor_data) {
  std::string out(kIntFileMagic, sizeof(kIntFileMagic));
  put<uint32_t>(out, kIntFileVersion);
  put<uint32_t>(out, static_cast<uint32_t>(description.size()));
  put<uint64_t>(out, tensor_data.size());
  out += description;
  out += tensor_data;
  put<uint64_t>(out, fnv1a(out.data(), out.size()));
  return out;
}

void reseal_int_file(std::string& bytes) {
  if (bytes.size() < kChecksumBytes) throw std::runtime_error("a .pdeqint file has at least 8 bytes");
  const size_t at = bytes.size() - kChecksumBytes;
  const uint64_t hash = fnv1a(bytes.data(), at);
  for (size_t i = 0; i < kChecksumBytes; ++i) bytes[at + i] = static_cast<char>((hash >> (8 * i)) & 0xff);
}

IntGraph parse_int_graph(const std::string& bytes, const std::string& name) {
  const auto fail = [&](const std::string& what, size_t offset) -> void {
    throw std::runtime_error(name + ": " + what + " at byte " + std::to_string(offset));
  };
  if (bytes.size() < sizeof(kIntFileMagic) ||
      std::memcmp(bytes.data(), kIntFileMagic, sizeof(kIntFileMagic)) != 0) {
    fail("not a pdeq integer model (expected the magic \"PDEQINT\\0\")", 0);
  }
  if (bytes.size() < kHeaderBytes + kChecksumBytes) {
    fail("truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the " +
             std::to_string(kHeaderBytes + kChecksumBytes) + "-byte header and checksum",
         bytes.size());
  }
  const auto version = get<uint32_t>(bytes, 8);
  if (version != kIntFileVersion) {
    fail("format version " + std::to_string(version) + ", but this build reads version " +
             std::to_string(kIntFileVersion),
         8);
  }
  const uint64_t graph_bytes = get<uint32_t>(bytes, 12);
  const uint64_t data_bytes = get<uint64_t>(bytes, 16);
  if (graph_bytes > kMaxGraphBytes)
    fail("graph description length " + std::to_string(graph_bytes) + " is implausible", 12);
  const uint64_t expected = kHeaderBytes + graph_bytes + kChecksumBytes;
  if (data_bytes > bytes.size() || expected + data_bytes != bytes.size()) {
    fail("truncated or padded: the header announces " + std::to_string(graph_bytes) + " + " +
             std::to_string(data_bytes) + " bytes, so the file should have " +
             (data_bytes > bytes.size() ? std::string("more") : std::to_string(expected + data_bytes)) +
             " bytes, but it has " + std::to_string(bytes.size()),
         bytes.size());
  }
  const size_t checksum_at = bytes.size() - kChecksumBytes;
  if (fnv1a(bytes.data(), checksum_at) != get<uint64_t>(bytes, checksum_at)) {
    fail("checksum mismatch (the file is corrupt)", checksum_at);
  }
  json description;
  try {
    description = json::parse(bytes.begin() + kHeaderBytes,
                              bytes.begin() + kHeaderBytes + static_cast<std::ptrdiff_t>(graph_bytes));
  } catch (const json::parse_error& e) {
    fail(std::string("graph description is not valid JSON (") + e.what() + ")", kHeaderBytes + e.byte);
  } catch (const json::exception& e) {
    fail(std::string("graph description is not valid JSON (") + e.what() + ")", kHeaderBytes);
  }
  const Reader reader(name, bytes, kHeaderBytes + graph_bytes);
  IntGraph graph;
  if (!description.is_object() || !description.contains("ops") || !description["ops"].is_array()) {
    fail("graph description has no \"ops\" array", kHeaderBytes);
  }
  graph.meta = description.contains("meta") ? description["meta"] : json();  // null: validate names it
  for (size_t i = 0; i < description["ops"].size(); ++i) {
    const json& o = description["ops"][i];
    const std::string where = "op " + std::to_string(i);
    if (!o.is_object()) reader.fail(where, "expected an object");
    IntOp op;
    try {
      op.kind = op_kind_from_name(reader.field<std::string>(o, "kind", where));
    } catch (const std::runtime_error& e) {
      reader.fail(where, e.what());
    }
    op.name = reader.field<std::string>(o, "name", where);
    op.inputs = reader.field<std::vector<int64_t>>(o, "inputs", where);
    op.output = reader.field<int64_t>(o, "output", where);
    op.stride = reader.field<int64_t>(o, "stride", where);
    op.padding = reader.field<int64_t>(o, "padding", where);
    if (o.contains("groups")) op.groups = reader.field<int64_t>(o, "groups", where);
    op.relu = reader.field<bool>(o, "relu", where);
    op.max_pool = reader.field<bool>(o, "max_pool", where);
    op.out_scale = reader.field<double>(o, "out_scale", where);
    op.out_zero_point = reader.field<int64_t>(o, "out_zero_point", where);
    op.qmax = reader.field<int64_t>(o, "qmax", where);
    op.weight_bits = reader.field<int64_t>(o, "weight_bits", where);
    op.weight = reader.tensor(o, "weight", where);
    op.weight_scale = reader.tensor(o, "weight_scale", where);
    op.bias = reader.tensor(o, "bias", where);
    if (op.kind == OpKind::kTvSmooth) {
      op.tau = reader.tensor(o, "tau", where);
      op.tv_iters = reader.field<int64_t>(o, "tv_iters", where);
      op.tv_eps = reader.field<double>(o, "tv_eps", where);
      op.tv_weight = reader.field<std::string>(o, "tv_weight", where);
    }
    graph.ops.push_back(std::move(op));
  }
  graph.validate_with_meta(name);
  return graph;
}

IntGraph load_int_graph(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open integer model " + path.string());
  std::ostringstream content;
  content << file.rdbuf();
  return parse_int_graph(content.str(), path.string());
}

}  // namespace pdeq::deploy
