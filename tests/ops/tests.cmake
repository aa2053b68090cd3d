kd_add_test(NAME ops_test SOURCES ops/metrics_test.cc ops/health_series_test.cc ops/http_server_test.cc
            LIBS kd_ops PkgConfig::HTTPLIB nlohmann_json::nlohmann_json TIMEOUT 30)
# Real daemons with their HTTP servers: health, promtool-linted metrics, status, preview, pages
# (tests/ops/endpoints_test.sh; 42 s alone, 199 s in a parallel ctest on 2 cores).
add_test(NAME endpoints_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ops/endpoints_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(endpoints_test PROPERTIES TIMEOUT 420 SKIP_RETURN_CODE 77 LABELS real_asset)
# The dashboard and the camera's page in headless Chromium against a real learner + edge (about
# 100 s on 2 busy cores): DOM markers the pages write once their data arrived, screenshots
# (dashboard.png, edge.png) and the dumped DOMs kept in build/tests/artefacts/dashboard.
add_test(NAME dashboard_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ops/dashboard_test.sh ${PROJECT_BINARY_DIR}
                                     ${CMAKE_CURRENT_BINARY_DIR}/artefacts/dashboard)
set_tests_properties(dashboard_test PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS real_asset)
# The same pages against tests/ops/fixtures (no daemons): exact counts, error and sparse-data paths.
add_test(NAME dashboard_fixtures_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ops/dashboard_test.sh --fixtures
                                              ${CMAKE_CURRENT_BINARY_DIR}/artefacts/dashboard_fixtures)
set_tests_properties(dashboard_fixtures_test PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
