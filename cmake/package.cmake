# `cpack -G DEB` in the build folder: one .deb, spanalloc_<version>_<arch>.deb,
# holding the library's runtime and dev components (cmake/install.cmake)
# under /usr; the companion tools are not in it. Dependencies come from
# dpkg-shlibdeps (libc6); the package declares its shared library (shlibs
# file) and runs ldconfig after installing and removing it (CPack's postinst
# and postrm).
set(SPANALLOC_PACKAGE_CONTACT "spanalloc maintainers <root@localhost>" CACHE STRING
    "Maintainer field of the .deb built by cpack")
set(CPACK_PACKAGE_NAME spanalloc)
set(CPACK_PACKAGE_VENDOR "spanalloc")
set(CPACK_PACKAGE_CONTACT ${SPANALLOC_PACKAGE_CONTACT})
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION "spanalloc replaces malloc, free and the C++ operators new and delete, \
through LD_PRELOAD=libspanalloc.so.${PROJECT_VERSION_MAJOR} or by linking. Includes the header \
spanalloc.h, the static library, a CMake package (find_package(spanalloc)) and spanalloc.pc.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
include(CPack)
