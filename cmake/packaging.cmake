# Debian packages with CPack (`cpack -G DEB` in the build tree; scripts/package_check.sh):
#   dlock         the CLI, its man page and bash completion (it links dlock statically)
#   libdlock0     libdlock.so.0 (the shared library, its SONAME gives the package name)
#   libdlock-dev  headers, static libraries, the libdlock.so link, CMake config, dlock.pc
# One package per install component of cmake/install.cmake and tools/CMakeLists.txt.
if(NOT DLOCK_TOP_LEVEL)
  return()  # a project using dlock through add_subdirectory packages itself
endif()

set(DLOCK_PACKAGE_MAINTAINER "dlock maintainers <maintainers@users.noreply.b-seed-c9208d06.example>"
    CACHE STRING "Maintainer field of the Debian packages")

set(CPACK_PACKAGE_NAME dlock)
set(CPACK_PACKAGE_VENDOR dlock)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# The synopsis of all three packages; CPack puts it before each component's description.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "${DLOCK_PACKAGE_MAINTAINER}")
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

# Only these components: anything else (the benchmarks' install rule) stays out of the packages.
set(CPACK_COMPONENTS_ALL dev)
if(TARGET dlock_shared)
  list(APPEND CPACK_COMPONENTS_ALL runtime)
  set(CPACK_COMPONENT_DEV_DEPENDS runtime)
endif()
if(TARGET dlock_cli)
  list(APPEND CPACK_COMPONENTS_ALL cli)
endif()

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${DLOCK_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Runtime dependencies of every ELF file come from dpkg-shlibdeps (dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file in libdlock0 (the only package with a SONAME), so packages built against it
# get their dependency on it from dpkg-shlibdeps too.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Binaries and the shared library without debug information (RelWithDebInfo would make the
# packages 3x larger); the static libraries keep theirs.
set(CPACK_STRIP_FILES ON)
# libdlock-dev depends on libdlock0 of the same version.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME dlock)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
set(CPACK_COMPONENT_CLI_DESCRIPTION "The dlock command-line tool: runs a command under a distributed lock,
inspects locks and runs a demo of contending worker processes. With its
manual page and bash completion.")

set(soname libdlock${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${soname})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "The shared library libdlock.so.${PROJECT_VERSION_MAJOR}: leases with fencing tokens.
Only the public API is exported.")

# The -dev package carries what dlockConfig.cmake's find_dependency and dlock.pc's
# Requires.private need, for the stores this build has.
set(dev_depends nlohmann-json3-dev pkg-config)
if(DLOCK_WITH_REDIS)
  list(APPEND dev_depends libhiredis-dev libssl-dev)
endif()
if(DLOCK_WITH_ETCD)
  list(APPEND dev_depends libgrpc++-dev libprotobuf-dev)
endif()
if(DLOCK_WITH_POSTGRES)
  list(APPEND dev_depends libpq-dev)
endif()
if(DLOCK_WITH_ZOOKEEPER)
  list(APPEND dev_depends libzookeeper-mt-dev)
endif()
list(JOIN dev_depends ", " CPACK_DEBIAN_DEV_PACKAGE_DEPENDS)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libdlock-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# dlock/asio.hpp is optional and needs standalone Asio.
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS libasio-dev)
set(CPACK_COMPONENT_DEV_DESCRIPTION "Development files: headers, static libraries and the libdlock.so link,
a CMake package (find_package(dlock)) and a pkg-config file (dlock.pc).")

include(CPack)
