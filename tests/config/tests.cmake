# Tests of config: the distill recipe, the daemons' options (loading, overrides, paths, checks) and
# the key tables behind them, key by key. option_table_test reads the private tables
# (config/daemon_keys.h), whose header includes toml++.
kd_add_test(NAME config_test
            SOURCES config/distill_options_test.cc config/daemon_options_test.cc config/option_table_test.cc
            LIBS kd_config PkgConfig::TOMLPP)
target_compile_definitions(config_test PRIVATE KD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
