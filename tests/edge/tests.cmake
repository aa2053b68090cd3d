# Tests of edge (the camera side): the per-frame parts (detection step, frame selection, un-acked
# buffer, running model) and each stage of the agent on fakes (queue, capture on a fake source,
# probation and rate meters on FakeClock, uplink and updater on a fake link). No real assets.
kd_add_test(NAME edge_test
            SOURCES edge/detect_loop_test.cc edge/frame_selector_test.cc edge/unacked_buffer_test.cc
                    edge/running_model_test.cc edge/model_holder_test.cc edge/bounded_queue_test.cc
                    edge/probation_test.cc edge/capture_test.cc edge/uplink_test.cc edge/updater_test.cc
                    edge/infer_test.cc edge/concurrency_test.cc edge/observe_test.cc
            LIBS kd_edge nlohmann_json::nlohmann_json TIMEOUT 60)
