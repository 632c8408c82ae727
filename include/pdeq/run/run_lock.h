// One writer per run folder: an exclusive lock that the kernel releases when its process ends, however it
// ends.
#pragma once

#include <filesystem>
#include <optional>

namespace pdeq::run {

/// Holds the exclusive lock of a run folder (flock on <root>/.lock, which records the holder's pid) for its
/// lifetime. Every process that writes a run folder (training, resuming) holds it, so a second writer is
/// refused at once instead of overwriting the first one's files.
class RunLock {
 public:
  /// Creates `root` if needed and takes its lock; throws std::runtime_error naming the folder and the pid of
  /// the process that holds it.
  explicit RunLock(const std::filesystem::path& root);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  /// The pid of the process holding the lock of `root`, or nullopt when no process holds it.
  static std::optional<long> holder(const std::filesystem::path& root);

 private:
  int fd_ = -1;
};

}  // namespace pdeq::run
