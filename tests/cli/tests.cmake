# The command lines of the three executables, as a user types them (a shell script: real processes,
# flags, exit codes, messages). About 85 s under a parallel ctest on 2 cores (it starts kdlearnd
# twice and labels a few frames): headroom.
add_test(NAME cli_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(cli_test PROPERTIES TIMEOUT 300 LABELS real_asset)
if(KD_BUILD_BENCH)
  # Smoke test of the ablation pipeline (all five arms, tiny budget): it must run end to end.
  add_test(NAME ablation_quick COMMAND bench_ablation --quick --json ${CMAKE_CURRENT_BINARY_DIR}/ablation_quick.json)
  set_tests_properties(ablation_quick PROPERTIES TIMEOUT 300 LABELS "real_asset;smoke")
endif()
