# docs/configs.md must be what `pdeq schema` prints (the config reference is generated from the schema).
execute_process(COMMAND ${PDEQ} schema OUTPUT_VARIABLE generated RESULT_VARIABLE code)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "pdeq schema failed with exit code ${code}")
endif()
file(READ ${DOC} committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR "${DOC} is not what `pdeq schema` prints; regenerate it: build/pdeq schema > docs/configs.md")
endif()
