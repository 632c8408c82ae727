// The .pdeqint file: an exported integer network, versioned and checked on load.
#pragma once

#include <pdeq/deploy/int_graph.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace pdeq::deploy {

/// The first 8 bytes of every .pdeqint file.
inline constexpr char kIntFileMagic[8] = {'P', 'D', 'E', 'Q', 'I', 'N', 'T', '\0'};
/// The format version this build writes and the only one it reads.
constexpr uint32_t kIntFileVersion = 1;

/// Layout (all integers little-endian):
///   0   8 bytes   magic "PDEQINT\0"
///   8   uint32    format version (1)
///   12  uint32    length G of the graph description
///   16  uint64    length B of the tensor data
///   24  G bytes   graph description: UTF-8 JSON {"meta": {...}, "ops": [...]}; every tensor field is
///                 {"dtype": "int8"|"float32"|"float64", "shape": [...], "offset": o, "bytes": n}, a range of
///                 the tensor data
///   24+G B bytes  tensor data (row-major, little-endian)
///   24+G+B uint64 FNV-1a 64-bit checksum of every byte before it
/// Checks the graph and its meta first (IntGraph::validate_with_meta); writes atomically (temporary file +
/// rename).
void save_int_graph(const IntGraph& graph, const std::filesystem::path& path);

/// Reads and validates a file written by save_int_graph. A file that is not one, is truncated, has another
/// version, a bad checksum, an inconsistent graph or meta (IntGraph::validate_with_meta) throws
/// std::runtime_error "<path>: <what> at byte <offset>" (or naming the op or the meta key), never anything
/// worse.
IntGraph load_int_graph(const std::filesystem::path& path);

/// The bytes of a file around a graph description (JSON text) and its tensor data: header with both
/// lengths, the two parts, the checksum. What save_int_graph writes; tools and tests that edit the parts of
/// a file on purpose frame them again with it.
std::string frame_int_file(const std::string& description, const std::string& tensor_data);

/// Rewrites the last 8 bytes of `bytes` (at least 8) to the checksum of everything before them, after an
/// edit made on purpose (tests, the fuzz target).
void reseal_int_file(std::string& bytes);

/// load_int_graph on bytes in memory (`name` stands for the path in messages); what the fuzz target calls.
IntGraph parse_int_graph(const std::string& bytes, const std::string& name);

}  // namespace pdeq::deploy
