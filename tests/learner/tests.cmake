# Tests of learner. The distillation engine: losses, rollout, teacher records (no assets) and the
# distiller on the real teacher and video (real_asset).
kd_add_test(NAME losses_test SOURCES learner/losses_test.cc learner/rollout_test.cc learner/teacher_record_test.cc
                                     learner/refine_test.cc learner/round_scheduler_test.cc learner/round_job_test.cc learner/label_job_test.cc
                                     learner/weight_average_test.cc learner/ingest_pressure_test.cc
            LIBS kd_learner nlohmann_json::nlohmann_json TIMEOUT 30)
kd_add_test(NAME distiller_test SOURCES learner/distiller_test.cc LIBS kd_learner TIMEOUT 120 LABELS real_asset)
# The stages of kdlearnd, each on its own (no teacher, no video: synthetic rows, tiny students, a
# real RocksDB store in a scratch directory, FakeClock).
kd_add_test(NAME learner_stages_test
            SOURCES learner/loop_state_test.cc learner/catalogue_test.cc learner/ingest_test.cc
                    learner/labeller_test.cc learner/trainer_test.cc learner/publisher_test.cc
                    learner/control_test.cc learner/admin_test.cc learner/concurrency_test.cc
                    learner/observe_test.cc learner/remote_teacher_test.cc
            LIBS kd_learner nlohmann_json::nlohmann_json TIMEOUT 120)
# The trainer stage on real frames with the real teacher (one round, gated and published).
kd_add_test(NAME learner_round_test SOURCES learner/trainer_round_test.cc
            LIBS kd_learner nlohmann_json::nlohmann_json TIMEOUT 180 LABELS real_asset)
