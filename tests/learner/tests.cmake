# The learner's stages, each on its own (no teacher, no video: synthetic rows, tiny students, a real
# RocksDB store in a scratch directory, FakeClock). The distillation engine's tests stay in
# tests/CMakeLists.txt (losses_test, distiller_test).
kd_add_test(NAME learner_stages_test
            SOURCES learner/loop_state_test.cc learner/catalogue_test.cc learner/ingest_test.cc
                    learner/labeller_test.cc learner/trainer_test.cc learner/publisher_test.cc
                    learner/control_test.cc learner/admin_test.cc learner/concurrency_test.cc
            LIBS kd_learner nlohmann_json::nlohmann_json TIMEOUT 120)
