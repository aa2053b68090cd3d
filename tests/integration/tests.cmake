# The continual loop end to end (real teacher, real video, a kdlearnd process, two edges over
# TCP + CURVE). Needs the assets; a few minutes on 2 CPU cores.
kd_add_test(NAME loop_test SOURCES integration/loop_test.cc
            LIBS kd_edge kd_storage kd_update kd_wire kd_config nlohmann_json::nlohmann_json TIMEOUT 900 LABELS "real_asset;integration")
target_compile_definitions(loop_test PRIVATE KD_KDLEARND="$<TARGET_FILE:kdlearnd>" KD_KDEDGE="$<TARGET_FILE:kdedge>"
                                             KD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(loop_test kdlearnd kdedge)
# Faults end to end (a kdlearnd process): the credit window, a disk that really fills (a tmpfs;
# skipped without root), a version that fails probation (rollback, halt, republish).
kd_add_test(NAME faults_test SOURCES integration/faults_test.cc
            LIBS kd_edge kd_storage kd_update kd_wire kd_config kd_media nlohmann_json::nlohmann_json TIMEOUT 900
            LABELS "real_asset;integration")
target_compile_definitions(faults_test PRIVATE KD_KDLEARND="$<TARGET_FILE:kdlearnd>" KD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(faults_test kdlearnd)
# The learner spread over `kdlearnd worker` processes on 127.0.0.1 (c10d store): placement, kill -9
# of a worker, a worker joining, refused strangers.
kd_add_test(NAME cluster_loop_test SOURCES integration/cluster_test.cc
            LIBS kd_storage kd_update kd_wire kd_media kd_model nlohmann_json::nlohmann_json TIMEOUT 1200
            LABELS "real_asset;integration")
target_compile_definitions(cluster_loop_test PRIVATE KD_KDLEARND="$<TARGET_FILE:kdlearnd>" KD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(cluster_loop_test kdlearnd)
