# dlock-bench: needs hiredis for the raw Redis peer; the etcd peers use the generated protos of
# src/etcd when the etcd store is built.
pkg_check_modules(BENCH_HIREDIS REQUIRED IMPORTED_TARGET hiredis)
set(bench_sources dlock_bench.cpp redis_raw.cpp)
if(DLOCK_WITH_ETCD)
  list(APPEND bench_sources etcd_raw.cpp)
else()
  list(APPEND bench_sources etcd_stub.cpp)
endif()
add_executable(dlock_bench ${bench_sources})
set_target_properties(dlock_bench PROPERTIES OUTPUT_NAME dlock-bench)
target_include_directories(dlock_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(dlock_bench PRIVATE dlock PkgConfig::BENCH_HIREDIS
                      nlohmann_json::nlohmann_json dlock_warnings)
if(DLOCK_WITH_ETCD)
  target_include_directories(dlock_bench SYSTEM PRIVATE ${PROJECT_BINARY_DIR}/src/etcd/gen)
  target_link_libraries(dlock_bench PRIVATE PkgConfig::DLOCK_GRPC)
endif()
install(TARGETS dlock_bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
