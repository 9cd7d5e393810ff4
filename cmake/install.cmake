# What `cmake --install` lays out for the allocator (included by
# src/CMakeLists.txt once the library targets exist), in two components:
#   runtime  libspanalloc.so.MAJOR and the file it names (what LD_PRELOAD
#            and linked programs load);
#   dev      the headers, libspanalloc.a, the libspanalloc.so link, the CMake
#            package (find_package(spanalloc) -> spanalloc::spanalloc, the
#            shared library, and spanalloc::spanalloc_static) and spanalloc.pc.
# The companion tools install in the default component: `cmake --install
# build --component runtime` and `--component dev` select the library alone.
# Every file of the package finds the others relative to itself, so an
# installed tree can be moved (a DESTDIR, a scratch root, a .deb).
include(CMakePackageConfigHelpers)

install(TARGETS spanalloc_shared spanalloc_static EXPORT spanallocTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${CMAKE_SOURCE_DIR}/include/spanalloc.h ${CMAKE_BINARY_DIR}/include/spanalloc_version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

set(SPANALLOC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/spanalloc)
install(EXPORT spanallocTargets NAMESPACE spanalloc:: DESTINATION ${SPANALLOC_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/spanallocConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/spanallocConfig.cmake INSTALL_DESTINATION ${SPANALLOC_CMAKE_DIR})
# The ABI is kept within a major version (the soname carries it).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/spanallocConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/spanallocConfig.cmake ${CMAKE_BINARY_DIR}/cmake/spanallocConfigVersion.cmake
  DESTINATION ${SPANALLOC_CMAKE_DIR} COMPONENT dev)

# spanalloc.pc: the prefix is found from the file's own place (${pcfiledir}).
set(SPANALLOC_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH SPANALLOC_PC_TO_PREFIX /root/${SPANALLOC_PC_DIR} /root)
string(REGEX REPLACE "/$" "" SPANALLOC_PC_TO_PREFIX "${SPANALLOC_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/spanalloc.pc.in ${CMAKE_BINARY_DIR}/cmake/spanalloc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/spanalloc.pc DESTINATION ${SPANALLOC_PC_DIR} COMPONENT dev)
