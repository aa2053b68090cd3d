# Tests of cluster: the c10d store wrapper (loopback listening, atomic add, compareSet) and worker
# membership (join with the shared secret and generation, heartbeats, death, departure, fenced and
# authenticated jobs), with real TCPStores on 127.0.0.1 in one process.
kd_add_test(NAME cluster_test SOURCES cluster/kv_store_test.cc cluster/membership_test.cc LIBS kd_cluster TIMEOUT 60)
