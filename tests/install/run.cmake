# The installed package from another project. Two modes:
#   -DMODE=install   install the build tree BUILD_DIR into PREFIX
#   -DMODE=consumer  configure, build and run the project SOURCE_DIR against PREFIX in WORK_DIR;
#                    HIDE=ON first makes SQLite, hiredis, Boost and nlohmann-json
#                    invisible to CMake (pkg-config looks nowhere, find_package of the others is
#                    disabled); EXPECT_ERROR=<regex> expects configuring to fail with that output.
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE ${PREFIX})
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
  return()
endif()

file(REMOVE_RECURSE ${WORK_DIR})
set(flags "")
if(SANITIZE STREQUAL "address")
  set(flags "-fsanitize=address,undefined")
elseif(SANITIZE STREQUAL "thread")
  set(flags "-fsanitize=thread")
endif()
set(env "")
set(hide "")
if(HIDE)
  set(env ${CMAKE_COMMAND} -E env PKG_CONFIG_LIBDIR=${WORK_DIR}/no-pkgconfig
          PKG_CONFIG_PATH=${WORK_DIR}/no-pkgconfig)
  set(hide -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
           -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON)
endif()
set(configure ${env} ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${PREFIX} ${hide} ${EXTRA_ARGS}
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
if(EXPECT_ERROR)
  execute_process(COMMAND ${configure} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "configuring ${SOURCE_DIR} succeeded; expected it to fail")
  endif()
  if(NOT out MATCHES "${EXPECT_ERROR}")
    message(FATAL_ERROR "configure failed without '${EXPECT_ERROR}' in its output:\n${out}")
  endif()
  message(STATUS "failed as expected: matched '${EXPECT_ERROR}'")
  return()
endif()
run(${configure})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
