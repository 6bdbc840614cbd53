# Installs the library, headers, a CMake package config (find_package(dlock)) and dlock.pc.
# Components (the Debian packages of cmake/packaging.cmake): `runtime` is libdlock.so.0 alone,
# `dev` everything a build against dlock needs.
include(CMakePackageConfigHelpers)

# Targets: dlock::dlock (static umbrella), dlock::core and one per built store (static), and
# dlock::shared (libdlock.so) when built.
set(dlock_install_targets dlock dlock_core ${DLOCK_STORE_TARGETS})
if(TARGET dlock_shared)
  list(APPEND dlock_install_targets dlock_shared)
endif()
install(TARGETS ${dlock_install_targets} EXPORT dlockTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# Public headers, without those of stores this build does not have.
set(dlock_header_excludes "")
foreach(pair "FILE:file" "REDIS:redis" "ETCD:etcd" "POSTGRES:postgres"
     "ZOOKEEPER:zookeeper")
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 store)
  list(GET pair 1 header)
  if(NOT DLOCK_WITH_${store})
    list(APPEND dlock_header_excludes PATTERN "${header}.hpp" EXCLUDE)
  endif()
endforeach()
install(DIRECTORY include/dlock DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        ${dlock_header_excludes})
install(EXPORT dlockTargets NAMESPACE dlock:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dlock
        COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/dlockConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/dlockConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dlock)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/dlockConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/dlockConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/dlockConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dlock COMPONENT dev)

# dlock.pc finds its prefix from where it is installed (${pcfiledir}), so the same file is right
# under /usr/local, /usr (the Debian package) or any --prefix / unpacked root.
file(RELATIVE_PATH dlock_pc_to_prefix "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" dlock_pc_to_prefix "${dlock_pc_to_prefix}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/dlock.pc.in ${CMAKE_CURRENT_BINARY_DIR}/dlock.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/dlock.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
