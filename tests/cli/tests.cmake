# The command lines of the three executables, as a user types them (a shell script: real processes,
# flags, exit codes, messages). About 85 s under a parallel ctest on 2 cores (it starts kdlearnd
# twice and labels a few frames): headroom.
add_test(NAME cli_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(cli_test PROPERTIES TIMEOUT 300 LABELS real_asset)
# The daemons' systemd notifications (sd_notify written by hand) against a real datagram socket.
kd_add_test(NAME sd_notify_test SOURCES cli/sd_notify_test.cc LIBS kd_daemon_common TIMEOUT 10)
# kdctl report: results.csv and the PNG plots from a round log.
kd_add_test(NAME report_test SOURCES cli/report_test.cc ${PROJECT_SOURCE_DIR}/daemon/kdctl/report.cc
            LIBS kd_media nlohmann_json::nlohmann_json TIMEOUT 30)
# The unit files in deploy/systemd: `systemd-analyze verify` with an empty stderr, `systemd-analyze
# security --offline=yes` under a stated exposure score (both a few seconds), then both daemons
# against a fake NOTIFY_SOCKET (READY=1, WATCHDOG=1 pings, STOPPING=1 on SIGTERM), after a tiny
# distill for kdedge's factory model; kdlearnd loads the teacher before READY=1. Up to 60 + 90 s of
# waiting for READY=1 when a daemon never sends it: headroom. Exit 77 = skipped (no systemd-analyze).
add_test(NAME systemd_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/systemd_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(systemd_test PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS real_asset)
if(KD_BUILD_BENCH)
  # Smoke test of the ablation pipeline (all five arms, tiny budget): it must run end to end.
  add_test(NAME ablation_quick COMMAND bench_ablation --quick --json ${CMAKE_CURRENT_BINARY_DIR}/ablation_quick.json)
  set_tests_properties(ablation_quick PROPERTIES TIMEOUT 300 LABELS "real_asset;smoke")
endif()
