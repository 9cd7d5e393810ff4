# Unit tests of the allocator's layers, one suite per layer, linked against
# the core objects (not the interposing entry points), so they also build
# under ASan, UBSan and TSan. Label: internal.
set(SPANALLOC_INTERNAL_TESTS
  size_classes_test
  lock_test
  os_memory_test
  metadata_alloc_test
  page_map_test
  free_list_test
  page_heap_test
  central_list_test
  thread_cache_test
  cpu_cache_test
  options_test
  allocator_test
  internal_stress_test)

foreach(t ${SPANALLOC_INTERNAL_TESTS})
  add_executable(${t} ${t}.cc $<TARGET_OBJECTS:spanalloc_core>)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include
      ${CMAKE_BINARY_DIR}/include)
  target_link_libraries(${t} PRIVATE GTest::gtest GTest::gtest_main pthread)
  if(SPANALLOC_SANITIZE)
    target_compile_options(${t} PRIVATE -fsanitize=${SPANALLOC_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${t} PRIVATE -fsanitize=${SPANALLOC_SANITIZE})
  endif()
  # The thread-cache suite looks at thread caches: it runs in thread mode
  # whatever the default (cpu_cache_test asks for cpu mode itself).
  set(_env "")
  if(t STREQUAL "thread_cache_test")
    set(_env ENVIRONMENT SPANALLOC_CACHE=thread)
  endif()
  gtest_discover_tests(${t} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS internal ${_env})
endforeach()

# Per-CPU caches must give way to thread caches when glibc registers no rseq area.
add_test(NAME cpu_cache_test.fallback_without_rseq COMMAND cpu_cache_test --gtest_filter=CpuCacheMode.*)
set_tests_properties(cpu_cache_test.fallback_without_rseq PROPERTIES LABELS internal
    ENVIRONMENT "GLIBC_TUNABLES=glibc.pthread.rseq=0;CPU_CACHE_EXPECT=thread;SPANALLOC_CACHE=cpu")

# The checked-in size-class table must be exactly what the generator writes.
add_test(NAME size_classes_table_is_generated
  COMMAND sh -c "\"$<TARGET_FILE:mksizeclasses>\" | cmp - \"${CMAKE_SOURCE_DIR}/src/size_classes_table.inc\"")
set_tests_properties(size_classes_table_is_generated PROPERTIES LABELS internal)

# The shared library needs nothing but libc: preloading it into a C program
# must not map the C++ runtime (new_delete.cc binds it weakly).
if(TARGET spanalloc_shared)
  add_test(NAME shared_library_needs_only_libc
    COMMAND sh -c "readelf -d \"$<TARGET_FILE:spanalloc_shared>\" | grep NEEDED | grep -v 'libc.so.6' && exit 1; LD_PRELOAD=\"$<TARGET_FILE:spanalloc_shared>\" sh -c 'grep -q libspanalloc /proc/self/maps && ! grep -q libstdc++ /proc/self/maps'")
  set_tests_properties(shared_library_needs_only_libc PROPERTIES LABELS internal)
endif()

# The kernel refusing memory part-way through: the core layers with a
# fault-injecting os_memory.cc (SPANALLOC_OS_FAULT_INJECTION; this test only,
# never the shipped library).
add_executable(os_fault_test os_fault_test.cc ${CMAKE_SOURCE_DIR}/src/os_memory.cc
    $<FILTER:$<TARGET_OBJECTS:spanalloc_core>,EXCLUDE,os_memory\\.cc\\.o$>)
target_compile_definitions(os_fault_test PRIVATE SPANALLOC_OS_FAULT_INJECTION=1)
target_include_directories(os_fault_test PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(os_fault_test PRIVATE GTest::gtest GTest::gtest_main pthread)
if(SPANALLOC_SANITIZE)
  target_compile_options(os_fault_test PRIVATE -fsanitize=${SPANALLOC_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(os_fault_test PRIVATE -fsanitize=${SPANALLOC_SANITIZE})
endif()
gtest_discover_tests(os_fault_test PROPERTIES LABELS internal DISCOVERY_TIMEOUT 60)
