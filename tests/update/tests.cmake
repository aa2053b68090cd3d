# Tests of update: deltas, manifests and signing keys, A/B slots and resumable downloads.
kd_add_test(NAME update_test
            SOURCES update/state_delta_test.cc update/manifest_test.cc update/slots_test.cc update/slots_fault_test.cc
            LIBS kd_update TIMEOUT 60)
