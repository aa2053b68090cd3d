# Tests of model: the TF.js graph interpreter, the weight format and dtype names, the student and
# its checked runner (no assets); the teacher on the real graph (real_asset).
kd_add_test(NAME model_test
            SOURCES model/tfjs_graph_test.cc model/weights_file_test.cc model/student_test.cc model/checked_run_test.cc
                    model/threads_test.cc
            LIBS kd_model nlohmann_json::nlohmann_json TIMEOUT 30)
kd_add_test(NAME teacher_test SOURCES model/teacher_test.cc LIBS kd_model kd_media TIMEOUT 60 LABELS real_asset)
