/* galvani CLI: raw keys and the terminal's size (see term.h). */
#include "term.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios gvc_saved;
static volatile sig_atomic_t gvc_raw_on, gvc_changed;

static const char gvc_show_cursor[] = "\033[?25h";
static const char gvc_hide_cursor[] = "\033[?25l";

/* Async-signal-safe: tcsetattr and write only. */
static void gvc_term_put_back(void)
{
    if (!gvc_raw_on)
        return;
    (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &gvc_saved);
    if (write(STDOUT_FILENO, gvc_show_cursor, sizeof gvc_show_cursor - 1) < 0) {
        /* nothing more can be done from here */
    }
}

static int gvc_term_apply(void)
{
    struct termios t = gvc_saved;
    /* Keys one at a time and not echoed; ISIG stays so that Ctrl-C and
     * Ctrl-Z work as everywhere else. */
    t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) != 0)
        return -1;
    if (write(STDOUT_FILENO, gvc_hide_cursor, sizeof gvc_hide_cursor - 1) < 0) {
        /* a cursor left visible is harmless */
    }
    return 0;
}

/* A signal that ends or stops galvani: the terminal is put back first,
 * then the signal does what it would have done (so the exit status still
 * says "killed by SIGINT", and Ctrl-Z still stops). */
static void gvc_on_fatal(int sig)
{
    gvc_term_put_back();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void gvc_on_cont(int sig)
{
    (void)sig;
    if (gvc_raw_on) {
        (void)gvc_term_apply();
        signal(SIGTSTP, gvc_on_fatal); /* reset to SIG_DFL by the stop */
    }
    gvc_changed = 1;
}

static void gvc_on_winch(int sig)
{
    (void)sig;
    gvc_changed = 1;
}

static void gvc_handle(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    /* A resize must not make a write to the terminal fail with EINTR
     * (stdio would drop the rest of the frame). */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(sig, &sa, NULL);
}

int gvc_term_raw(void)
{
    /* Resizes matter even without keys (stdin piped, stdout a terminal). */
    gvc_handle(SIGWINCH, gvc_on_winch);
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &gvc_saved) != 0)
        return -1;
    static const int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        gvc_handle(fatal[i], gvc_on_fatal);
    gvc_handle(SIGCONT, gvc_on_cont);
    if (gvc_term_apply() != 0)
        return -1;
    gvc_raw_on = 1;
    return 0;
}

void gvc_term_restore(void)
{
    gvc_term_put_back();
    gvc_raw_on = 0;
}

int gvc_term_key(void)
{
    unsigned char c;
    if (!gvc_raw_on || read(STDIN_FILENO, &c, 1) != 1)
        return -1;
    return c;
}

void gvc_term_size(int *cols, int *rows)
{
    struct winsize ws;
    *cols = 80;
    *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        if (ws.ws_col > 0)
            *cols = ws.ws_col;
        if (ws.ws_row > 0)
            *rows = ws.ws_row;
    }
}

int gvc_term_changed(void)
{
    int c = gvc_changed;
    gvc_changed = 0;
    return c;
}
