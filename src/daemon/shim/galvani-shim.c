/*
 * galvani-shim.c — the supervisor's program: one supervisor (shim_main,
 * main.c), or with --serve the fork server galvanid starts once and asks
 * for each new supervisor (shim_serve, serve.c).
 */
#include <string.h>

#include "shim.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
        return shim_serve(argc, argv);
    return shim_main(argc, argv);
}
