# GALVANI_SANITIZE=ON builds *everything* (library, tests, examples, bench)
# with AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Applied globally rather than per target because ASan needs the main program
# and every library it loads to agree, and mixing instrumented and
# uninstrumented code hides bugs.  -fno-sanitize-recover=all turns every UBSan
# report into a hard failure, so ctest cannot pass with UB in the log.
if(GALVANI_SANITIZE)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
        message(FATAL_ERROR "GALVANI_SANITIZE needs GCC or Clang")
    endif()
    set(GALVANI_SANITIZE_FLAGS
        -fsanitize=address,undefined
        -fno-omit-frame-pointer
        -fno-sanitize-recover=all)
    add_compile_options(${GALVANI_SANITIZE_FLAGS})
    add_link_options(${GALVANI_SANITIZE_FLAGS})
else()
    set(GALVANI_SANITIZE_FLAGS "")
endif()
