# Installs the built pdeq into a scratch prefix, then configures, builds and runs tests/consumer against it.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, and where pdeq's build found its dependencies: TORCH_DIR,
# PREFIX_PATH ('|'-separated), ZLIB_INCLUDE_DIR, ZLIB_LIBRARY.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
# The consumer finds pdeq's dependencies where pdeq's build found them: its prefix path (the PyPI wheel's torch/
# folder, the GPU check's header-only libraries; '|'-separated) and zlib.
string(REPLACE "|" ";" prefix_path "${WORK_DIR}/prefix|${PREFIX_PATH}")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
                        -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix_path}"
                        "-DTorch_DIR=${TORCH_DIR}" "-DZLIB_INCLUDE_DIR=${ZLIB_INCLUDE_DIR}"
                        "-DZLIB_LIBRARY=${ZLIB_LIBRARY}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer ran but failed (${rc})")
endif()
