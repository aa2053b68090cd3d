# Third-party packages, all from Debian 12 (installed by scripts/setup.sh).
# Each is linked PRIVATE by exactly one wrapping module; see docs/ARCHITECTURE.md.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(spdlog REQUIRED)                    # base
find_package(nlohmann_json 3.10 REQUIRED)        # eval, model (teacher graph), learner reports
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)  # config
find_package(CLI11 REQUIRED)                     # daemon
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs videoio)  # media
# update (ed25519 manifest signatures) and wire (CURVE key files); the fuzz targets sign test input.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)  # base (SHA-256 with the CPU's SHA extensions)
# ops: the management HTTP server. Debian builds cpp-httplib as a library (libcpp-httplib.so, with
# OpenSSL, zlib and brotli support): its header must see the same defines, which the .pc carries.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
find_package(prometheus-cpp CONFIG REQUIRED)     # ops (core: the text serializer)

if(KD_WITH_CUDA)
  # A CUDA-enabled LibTorch (e.g. the one inside a Python torch wheel): point Torch_DIR at it.
  find_package(Torch REQUIRED)
  if(NOT TORCH_CUDA_LIBRARIES AND NOT CUDA_FOUND)
    message(WARNING "KD_WITH_CUDA=ON but this LibTorch has no CUDA; building for CPU")
  endif()
else()
  find_package(Torch REQUIRED)
endif()
# TorchConfig puts its flags into TORCH_CXX_FLAGS (the ABI macro); they travel with the target.
if(TARGET torch AND TORCH_CXX_FLAGS)
  separate_arguments(_kd_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  set_property(TARGET torch APPEND PROPERTY INTERFACE_COMPILE_OPTIONS ${_kd_torch_flags})
endif()
# Debian's Torch include dirs are not SYSTEM: re-export them as such so -Wshadow etc. stay ours.
add_library(kd_torch INTERFACE)
target_link_libraries(kd_torch INTERFACE ${TORCH_LIBRARIES})
get_target_property(_kd_torch_inc torch INTERFACE_INCLUDE_DIRECTORIES)
if(_kd_torch_inc)
  target_include_directories(kd_torch SYSTEM INTERFACE ${_kd_torch_inc})
endif()

# kd_torch_pch(target): precompile the LibTorch headers once for the target.
function(kd_torch_pch target)
  if(KD_USE_PCH)
    if(TARGET kd_torch_pch_anchor)
      target_precompile_headers(${target} REUSE_FROM kd_torch_pch_anchor)
    else()
      target_precompile_headers(${target} PRIVATE <torch/torch.h>)
    endif()
  endif()
endfunction()
