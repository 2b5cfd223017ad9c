# Warnings for every C target in the project (library, tests, examples, bench).
#
# -Werror is deliberate: the project rule is "warning-clean", and a warning
# that is allowed to scroll by is a warning nobody reads.
#
#   -Wshadow              an inner name hiding an outer one is a classic source
#                         of "why is this variable not updated" bugs
#   -Wstrict-prototypes   `int f()` in C means "any arguments"; require (void)
#   -Wmissing-prototypes  a non-static function without a declaration in a
#                         header is either dead or should be static
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    add_compile_options(
        -Wall
        -Wextra
        -Werror
        -Wshadow
        -Wstrict-prototypes
        -Wmissing-prototypes)
endif()
