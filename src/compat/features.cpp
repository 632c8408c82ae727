// PDEQ_WITH_OPENCV is defined for this source and the sources that use OpenCV only (CMakeLists.txt), so that
// switching it keeps the flags, precompiled header and ccache entries of the rest of the library.
#include <pdeq/compat/features.h>

#include <stdexcept>

namespace pdeq::compat {

bool opencv_built() {
#ifdef PDEQ_WITH_OPENCV
  return true;
#else
  return false;
#endif
}

std::string without_opencv(const std::string& what) {
  return what +
         " needs OpenCV, and this pdeq was built without it (PDEQ_WITH_OPENCV=OFF); install OpenCV "
         "(libopencv-dev) and reconfigure with -DPDEQ_WITH_OPENCV=ON";
}

void refuse_without_opencv(const std::string& what) { throw std::runtime_error(without_opencv(what)); }

}  // namespace pdeq::compat
