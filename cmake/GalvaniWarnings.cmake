# Warnings for every C target in the project (library, tests, examples, bench).
#
# The project rule is "warning-clean", and a warning that is allowed to scroll
# by is a warning nobody reads; scripts/test (CI) therefore builds every tree
# with GALVANI_WERROR=ON.  It is OFF by default because the set of warnings
# depends on the compiler, its version and the optimisation level (gcc's
# -Wmaybe-uninitialized, for one, comes and goes with inlining at -O3): a
# user's or packager's build with a newer or different compiler must not fail
# on a warning that says nothing about the program being wrong.
#
#   -Wshadow              an inner name hiding an outer one is a classic source
#                         of "why is this variable not updated" bugs
#   -Wstrict-prototypes   `int f()` in C means "any arguments"; require (void)
#   -Wmissing-prototypes  a non-static function without a declaration in a
#                         header is either dead or should be static
option(GALVANI_WERROR "Treat compiler warnings as errors (scripts/test and CI turn this on)" OFF)

if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    add_compile_options(
        -Wall
        -Wextra
        -Wshadow
        -Wstrict-prototypes
        -Wmissing-prototypes)
    if(GALVANI_WERROR)
        add_compile_options(-Werror)
    endif()
endif()
