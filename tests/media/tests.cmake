# Tests of media: frame sources (files, folders, ranges, replay) and image operations.
kd_add_test(NAME media_test SOURCES media/video_source_test.cc media/image_ops_test.cc media/chart_test.cc
            LIBS kd_media kd_media_test_opencv)
