# Sanitizers apply to the whole build (libraries, tests, tools). LibTorch stays uninstrumented;
# ASan's container-overflow check is off at run time because of that (see kd_add_test).
# KD_BUILD_FUZZERS implies ASan + UBSan everywhere, plus libFuzzer's coverage instrumentation
# (-fsanitize=fuzzer-no-link) on every library; fuzz/CMakeLists.txt links the targets with
# -fsanitize=fuzzer (libFuzzer's main).
if(KD_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KD_BUILD_FUZZERS=ON needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID} "
                        "${CMAKE_CXX_COMPILER}: configure a separate build tree with "
                        "CC=clang-14 CXX=clang++-14 (see fuzz/README.md)")
  endif()
  if(KD_SANITIZE_THREAD)
    message(FATAL_ERROR "KD_BUILD_FUZZERS cannot be combined with KD_SANITIZE_THREAD")
  endif()
  set(KD_SANITIZE_ADDRESS ON)
  set(KD_SANITIZE_UNDEFINED ON)
  # Debian's LibTorch 1.13 headers use std::vector<c10::IValue> members while IValue is still
  # incomplete: gcc accepts that, but clang rejects it in C++20 against libstdc++ 12, whose vector
  # is constexpr (instantiated on the spot). So the fuzz tree compiles against libstdc++ 11's
  # headers (C++20 without constexpr containers; same ABI, linked with the system libstdc++.so.6).
  set(KD_FUZZ_LIBSTDCXX_HEADERS "/usr/include/c++/11" CACHE PATH
      "libstdc++ headers of the fuzz tree (see cmake/KdSanitizers.cmake); empty = the compiler's own")
  if(KD_FUZZ_LIBSTDCXX_HEADERS)
    get_filename_component(_kd_stdcxx_version "${KD_FUZZ_LIBSTDCXX_HEADERS}" NAME)
    set(_kd_stdcxx_arch "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/c++/${_kd_stdcxx_version}")
    if(NOT EXISTS "${KD_FUZZ_LIBSTDCXX_HEADERS}/vector" OR NOT EXISTS "${_kd_stdcxx_arch}/bits/c++config.h")
      message(FATAL_ERROR "KD_BUILD_FUZZERS: no libstdc++ headers in ${KD_FUZZ_LIBSTDCXX_HEADERS} and "
                          "${_kd_stdcxx_arch}: install libstdc++-11-dev (scripts/setup.sh does)")
    endif()
    add_compile_options(-nostdinc++ "SHELL:-isystem ${KD_FUZZ_LIBSTDCXX_HEADERS}" "SHELL:-isystem ${_kd_stdcxx_arch}"
                        "SHELL:-isystem ${KD_FUZZ_LIBSTDCXX_HEADERS}/backward")
  endif()
endif()
if(KD_SANITIZE_THREAD AND (KD_SANITIZE_ADDRESS))
  message(FATAL_ERROR "KD_SANITIZE_THREAD cannot be combined with KD_SANITIZE_ADDRESS")
endif()
set(KD_SANITIZER_FLAGS "")
if(KD_SANITIZE_ADDRESS)
  list(APPEND KD_SANITIZER_FLAGS -fsanitize=address -fno-omit-frame-pointer)
endif()
if(KD_SANITIZE_UNDEFINED)
  list(APPEND KD_SANITIZER_FLAGS -fsanitize=undefined -fno-sanitize-recover=undefined)
endif()
if(KD_SANITIZE_THREAD)
  list(APPEND KD_SANITIZER_FLAGS -fsanitize=thread)
endif()
if(KD_BUILD_FUZZERS)
  list(APPEND KD_SANITIZER_FLAGS -fsanitize=fuzzer-no-link)
endif()
if(KD_SANITIZER_FLAGS)
  add_compile_options(${KD_SANITIZER_FLAGS})
  add_link_options(${KD_SANITIZER_FLAGS})
endif()
