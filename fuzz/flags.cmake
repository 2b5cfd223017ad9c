# fuzz/flags.cmake — compiler flags for a GALVANI_FUZZ=ON build tree,
# included by the top-level CMakeLists.txt before any target is defined.
#
# Everything in this tree (libgalvani, galvanid_core, the CLI) is compiled
# with -fsanitize=fuzzer-no-link: libFuzzer's coverage instrumentation
# (edge counters, comparison tracing) without its main(), so the fuzzer sees
# inside the code under test, not only inside the target's few lines.  ASan
# and UBSan come with it (a fuzzer without sanitizers only finds crashes,
# not the silent overflow that precedes one); -fno-sanitize-recover=all turns
# every UBSan report into a finding.  Only the fuzz targets themselves link
# with -fsanitize=fuzzer (fuzz/CMakeLists.txt), which brings libFuzzer's
# main().  Debian's clang needs libclang-rt-14-dev for those runtimes.
if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "GALVANI_FUZZ needs clang (CC=clang cmake -S . -B build-fuzz -DGALVANI_FUZZ=ON)")
endif()
if(GALVANI_SANITIZE)
    message(FATAL_ERROR "GALVANI_FUZZ already builds with ASan+UBSan: leave GALVANI_SANITIZE off")
endif()
set(GALVANI_FUZZ_FLAGS
    -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=all
    -fno-omit-frame-pointer
    -gline-tables-only)
add_compile_options(${GALVANI_FUZZ_FLAGS})
add_link_options(-fsanitize=address,undefined)
