/* galvani CLI: the --help texts of galvani and of each command. */
#ifndef GALVANI_CLI_HELP_H
#define GALVANI_CLI_HELP_H

/* The daemon's address when neither --server nor GALVANI_URL says. */
#define GVC_DEFAULT_URL "http://127.0.0.1:8000"

/* `galvani --help`. */
extern const char gvc_main_help[];

/* `galvani CMD --help`, or NULL if CMD is not a command. */
const char *gvc_help_for(const char *cmd);

#endif
