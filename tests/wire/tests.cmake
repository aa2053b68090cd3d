# Tests of wire (the edge <-> learner protocol): codec and fuzz, key files, sockets over inproc,
# TCP 127.0.0.1 with CURVE, and ipc.
kd_add_test(NAME wire_test
            SOURCES wire/message_test.cc wire/curve_keys_test.cc wire/endpoint_test.cc
            LIBS kd_wire TIMEOUT 60)
