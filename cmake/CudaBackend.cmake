# Enables CUDA when a toolkit (nvcc 12 or later) is found, setting
# SEQ1F1B_HAVE_CUDA; without one, or with -DSEQ1F1B_CUDA=OFF, nothing changes.
option(SEQ1F1B_CUDA "Build the CUDA backend when a CUDA toolkit is found" ON)
set(SEQ1F1B_HAVE_CUDA OFF)
if(SEQ1F1B_CUDA)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
     AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc) # not on PATH by default
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  set(_s1f_nvcc_version 0)
  if(CMAKE_CUDA_COMPILER)
    execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --version
      OUTPUT_VARIABLE _s1f_nvcc_out ERROR_QUIET)
    if(_s1f_nvcc_out MATCHES "release ([0-9]+\\.[0-9]+)")
      set(_s1f_nvcc_version ${CMAKE_MATCH_1})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER AND _s1f_nvcc_version VERSION_LESS 12.0)
    message(STATUS "CUDA backend: off (nvcc ${_s1f_nvcc_version} found, "
                   "sm_90a needs 12.0 or later)")
  elseif(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Hopper SASS (wgmma-capable sm_90a) plus PTX that newer GPUs can JIT.
      set(CMAKE_CUDA_ARCHITECTURES "90a-real;90-virtual")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(SEQ1F1B_HAVE_CUDA ON)
    message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES})")
  else()
    message(STATUS "CUDA backend: off (no CUDA compiler found)")
  endif()
else()
  message(STATUS "CUDA backend: off (SEQ1F1B_CUDA=OFF)")
endif()
