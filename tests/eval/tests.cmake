# Tests of eval: COCO AP and the COCO JSON readers/writers.
kd_add_test(NAME eval_test SOURCES eval/coco_eval_test.cc eval/coco_json_test.cc LIBS kd_eval)
