# Finds the project's dependencies and decides which optional parts build.
# The engine needs LibTorch and Eigen only; everything else is optional and reported.

find_package(Torch REQUIRED)
message(STATUS "WFM: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")

# Eigen: Debian's package config, or headers carried in .deps/include/eigen3.
find_package(Eigen3 3.3 QUIET NO_MODULE)
if(NOT TARGET Eigen3::Eigen)
    find_path(WFM_EIGEN_INCLUDE Eigen/Dense PATH_SUFFIXES eigen3
        HINTS "${CMAKE_SOURCE_DIR}/.deps/include" REQUIRED)
    add_library(Eigen3::Eigen INTERFACE IMPORTED)
    target_include_directories(Eigen3::Eigen INTERFACE "${WFM_EIGEN_INCLUDE}")
endif()

# CLI11 and nlohmann-json (header only) for the command line.
find_package(CLI11 QUIET CONFIG)
if(NOT TARGET CLI11::CLI11)
    find_path(WFM_CLI11_INCLUDE CLI/CLI.hpp HINTS "${CMAKE_SOURCE_DIR}/.deps/include" REQUIRED)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE "${WFM_CLI11_INCLUDE}")
endif()
find_package(nlohmann_json 3 QUIET CONFIG)
if(NOT TARGET nlohmann_json::nlohmann_json)
    find_path(WFM_JSON_INCLUDE nlohmann/json.hpp HINTS "${CMAKE_SOURCE_DIR}/.deps/include" REQUIRED)
    add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
    target_include_directories(nlohmann_json::nlohmann_json INTERFACE "${WFM_JSON_INCLUDE}")
endif()

# LEMON (network simplex for exact EMD). Its network simplex is header only.
find_path(WFM_LEMON_INCLUDE lemon/network_simplex.h HINTS "${CMAKE_SOURCE_DIR}/.deps/include")
if(WFM_LEMON_INCLUDE)
    set(WFM_HAVE_LEMON ON)
    add_library(wfm_lemon INTERFACE)
    target_include_directories(wfm_lemon SYSTEM INTERFACE "${WFM_LEMON_INCLUDE}")
else()
    set(WFM_HAVE_LEMON OFF)
    message(WARNING "WFM: LEMON not found: exact EMD is unavailable (install liblemon-dev)")
endif()

# nanoflann (header only): kd-trees for the spatial neighbours of cellular niches. Debian's
# package config, or the header carried in .deps/include (GPU build machines lack the package).
find_package(nanoflann QUIET CONFIG)
if(NOT TARGET nanoflann::nanoflann)
    find_path(WFM_NANOFLANN_INCLUDE nanoflann.hpp HINTS "${CMAKE_SOURCE_DIR}/.deps/include" REQUIRED)
    add_library(nanoflann::nanoflann INTERFACE IMPORTED)
    target_include_directories(nanoflann::nanoflann SYSTEM INTERFACE "${WFM_NANOFLANN_INCLUDE}")
endif()

# libzip for .npz archives.
# (pkg-config: Debian 12's libzip CMake package refers to tools that are not installed)
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
    pkg_check_modules(LIBZIP QUIET IMPORTED_TARGET GLOBAL libzip)
endif()
if(TARGET PkgConfig::LIBZIP)
    add_library(libzip::zip ALIAS PkgConfig::LIBZIP)
    set(WFM_HAVE_LIBZIP ON)
else()
    set(WFM_HAVE_LIBZIP OFF)
    message(WARNING "WFM: libzip not found: .npz reading and writing is unavailable (install libzip-dev)")
endif()

# zlib for gzip-compressed IDX files (MNIST and friends).
find_package(ZLIB REQUIRED)

# CUDA kernels: only when the LibTorch found was built with CUDA.
set(WFM_HAVE_CUDA OFF)
if(NOT WFM_CUDA STREQUAL "OFF")
    set(_torch_has_cuda OFF)
    if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
        set(_torch_has_cuda ON)
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(_torch_has_cuda AND CMAKE_CUDA_COMPILER)
        enable_language(CUDA)
        set(WFM_HAVE_CUDA ON)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
            set(CMAKE_CUDA_ARCHITECTURES 80 90)
        endif()
        message(STATUS "WFM: CUDA kernels ON (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
    elseif(WFM_CUDA STREQUAL "ON")
        message(FATAL_ERROR "WFM_CUDA=ON but LibTorch has no CUDA or nvcc is missing")
    else()
        message(STATUS "WFM: CUDA kernels OFF (LibTorch without CUDA or no nvcc)")
    endif()
endif()

# GUI: Qt 6 and VTK 9; off, with a message, when either is missing.
if(WFM_BUILD_GUI)
    find_package(Qt6 6.2 QUIET COMPONENTS Widgets OpenGLWidgets Charts Test)
    find_package(VTK 9 QUIET COMPONENTS
        RenderingOpenGL2 RenderingCore RenderingAnnotation InteractionStyle
        FiltersSources FiltersGeneral CommonCore IOImage RenderingFreeType)
    if(NOT Qt6_FOUND OR NOT VTK_FOUND)
        message(STATUS "WFM: Qt 6 or VTK 9 not found: the GUI is turned off (engine and CLI still build)")
        set(WFM_BUILD_GUI OFF CACHE BOOL "Build the Qt 6 + VTK desktop app" FORCE)
    endif()
endif()

# Qt Test drives the test suite; without Qt 6 only the standalone CUDA checks build.
find_package(Qt6 6.2 QUIET COMPONENTS Core Test)
if(Qt6Test_FOUND)
    set(WFM_HAVE_QTTEST ON)
else()
    set(WFM_HAVE_QTTEST OFF)
    message(STATUS "WFM: Qt 6 Test not found: Qt Test suites are not built")
endif()

find_package(benchmark QUIET)
if(NOT benchmark_FOUND)
    set(WFM_BUILD_BENCHMARKS OFF)
endif()

find_package(Threads REQUIRED)
