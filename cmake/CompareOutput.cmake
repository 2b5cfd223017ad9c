# cmake -DPROGRAM=<exe> -DEXPECTED=<file> -P CompareOutput.cmake
#
# Runs PROGRAM and fails unless it exits 0 and its stdout equals the contents
# of EXPECTED byte for byte.  Used by the example_* tests.
foreach(_var PROGRAM EXPECTED)
    if(NOT DEFINED ${_var})
        message(FATAL_ERROR "CompareOutput.cmake: ${_var} not set")
    endif()
endforeach()

execute_process(COMMAND ${PROGRAM}
    OUTPUT_VARIABLE _out
    ERROR_VARIABLE _err
    RESULT_VARIABLE _rc)
file(READ ${EXPECTED} _expected)

if(NOT _rc STREQUAL "0")
    message(FATAL_ERROR "${PROGRAM} exited with ${_rc}\nstdout:\n${_out}\nstderr:\n${_err}")
endif()
if(NOT _out STREQUAL _expected)
    message(FATAL_ERROR "${PROGRAM}: output differs from ${EXPECTED}\n"
        "--- expected ---\n${_expected}--- actual ---\n${_out}--- stderr ---\n${_err}")
endif()
if(NOT _err STREQUAL "")
    # Sanitizer reports go to stderr; a clean run prints nothing there.
    message(FATAL_ERROR "${PROGRAM} wrote to stderr:\n${_err}")
endif()
message(STATUS "${PROGRAM}: output matches ${EXPECTED}")
