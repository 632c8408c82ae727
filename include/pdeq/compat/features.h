// What this build of pdeq was configured with, for code and tests that depend on an optional library.
#pragma once

#include <string>

namespace pdeq::compat {

/// Whether pdeq was built with OpenCV (CMake option PDEQ_WITH_OPENCV, default ON). Without it, image folders
/// (decoding), PNG plots (training curves, sweep reports, stability) and the images of `analyze tv` refuse
/// with refuse_without_opencv; everything else works.
bool opencv_built();

/// "<what> needs OpenCV, and this pdeq was built without it (PDEQ_WITH_OPENCV=OFF); install OpenCV
/// (libopencv-dev) and reconfigure with -DPDEQ_WITH_OPENCV=ON".
std::string without_opencv(const std::string& what);

/// Throws std::runtime_error(without_opencv(what)): "<what> needs OpenCV, and this pdeq was built without it
/// (PDEQ_WITH_OPENCV=OFF); install OpenCV (libopencv-dev) and reconfigure with -DPDEQ_WITH_OPENCV=ON".
[[noreturn]] void refuse_without_opencv(const std::string& what);

}  // namespace pdeq::compat
