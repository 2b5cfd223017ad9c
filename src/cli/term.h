/* galvani CLI: the terminal of `galvani watch` — its size, and keys read
 * one at a time without echo (raw mode), with the terminal's settings put
 * back however galvani ends (q, the end of the jobs, Ctrl-C, kill, Ctrl-Z). */
#ifndef GALVANI_CLI_TERM_H
#define GALVANI_CLI_TERM_H

/* Put the terminal on stdin in raw mode (no echo, no line buffering;
 * Ctrl-C still interrupts) and hide the cursor, until gvc_term_restore.
 * 0, or -1 if stdin is not a terminal (then no keys are read). */
int gvc_term_raw(void);
/* Put back what gvc_term_raw changed (safe to call more than once). */
void gvc_term_restore(void);
/* The next key pressed, or -1 if none is waiting. */
int gvc_term_key(void);
/* The terminal's size (stdout); 80x24 when it does not say. */
void gvc_term_size(int *cols, int *rows);
/* The terminal was resized (or galvani came back from Ctrl-Z) since the
 * last call: the screen must be redrawn whole. */
int gvc_term_changed(void);

#endif
