/*
 * openapi.c — the OpenAPI document (web/openapi.json) compiled into the
 * binary, served at GET /openapi.json.
 *
 * The file is the single source: the assembler's .incbin copies it into
 * .rodata at build time, so galvanid serves it from anywhere (build tree or
 * installed) with nothing to find at run time.  The path is resolved
 * against the include path: galvanid_core's include directory is
 * src/daemon, hence "../../web/openapi.json" (GCC and Clang both pass -I
 * to the assembler).  The build does not see this dependency by itself;
 * src/daemon/CMakeLists.txt lists it in OBJECT_DEPENDS so an edit rebuilds
 * this file, and test_api_http checks the served bytes against the file.
 */
#include "api_int.h"

__asm__(".section .rodata\n"
        ".global gvd_openapi_json\n"
        ".type gvd_openapi_json, @object\n"
        "gvd_openapi_json:\n"
        ".incbin \"../../web/openapi.json\"\n"
        ".global gvd_openapi_json_end\n"
        "gvd_openapi_json_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char gvd_openapi_json_end[];

size_t gvd_openapi_json_len(void)
{
    return (size_t)(gvd_openapi_json_end - gvd_openapi_json);
}
