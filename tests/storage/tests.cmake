# Tests of storage: the RocksDB sample store (budget, retention, corruption, reopen), the replay
# sampler and the record codec.
kd_add_test(NAME storage_test
            SOURCES storage/sample_store_test.cc storage/frame_journal_test.cc storage/replay_sampler_test.cc
                    storage/record_codec_test.cc
            LIBS kd_storage TIMEOUT 60)
