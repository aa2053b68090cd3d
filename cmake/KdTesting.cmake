# kd_add_test(NAME name SOURCES ... LIBS ... [TIMEOUT s] [LABELS ...])
# One gtest executable per unit; every test has a ctest TIMEOUT (default 60 s: a 4 s test timed out
# at 10 s in a loaded CI run) and exit code 77
# means "skipped" (e.g. a real asset is missing).
if(KD_BUILD_TESTS OR KD_BUILD_FUZZERS)
  enable_testing()  # in the top directory, where ctest looks (the fuzzers register tests too)
endif()
if(KD_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

function(kd_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock
                                          $<TARGET_NAME_IF_EXISTS:kd_test_support>)
  kd_set_warnings(${T_NAME})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=0;TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
