# Tests of base: status, detections, clocks, the file-system seam, text, and the byte rules
# (LE/BE coding, hex, SHA-256, CRC32C, the device-id rule), host:port, thread priority.
kd_add_test(NAME base_test
            SOURCES base/status_test.cc base/detection_test.cc base/clock_test.cc base/file_system_test.cc
                    base/text_test.cc base/coding_test.cc base/hex_test.cc base/sha256_test.cc base/crc32c_test.cc
                    base/device_id_test.cc base/host_port_test.cc base/thread_priority_test.cc base/thread_name_test.cc
            LIBS kd_base)
