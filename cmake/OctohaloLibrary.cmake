# octohalo_add_library: the one setup every octohalo library shares.
#
#   octohalo_add_library(<name> SOURCES <src>... [PUBLIC <dep>...] [PRIVATE <dep>...])
#
# Builds octohalo_<name> from the calling folder's src/ with its include/ as the public include
# tree; octohalo::<name> is its alias here and its name in the installed package. It installs the
# library, the calling folder's include/ tree (which holds only headers a public header needs:
# private helpers live in src/detail/), and an export set of its own, octohalo-<name>-targets, so
# that octohaloConfig.cmake loads a component, and looks for its dependencies, only when asked.
function(octohalo_add_library name)
  cmake_parse_arguments(L "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  if(NOT L_SOURCES)
    message(FATAL_ERROR "octohalo_add_library(${name}): no SOURCES")
  endif()
  set(target octohalo_${name})
  add_library(${target} ${L_SOURCES})
  add_library(octohalo::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME ${target})
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${L_PUBLIC}
                        PRIVATE ${L_PRIVATE} $<BUILD_INTERFACE:octohalo_warnings>)
  install(TARGETS ${target} EXPORT octohalo-${name}-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT octohalo-${name}-targets NAMESPACE octohalo::
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/octohalo)
endfunction()
