/* parser.h: the sans-I/O IMAP command reader and argument parser.
 *
 * The reader assembles one command from the byte stream: its lines and the
 * literals between them ({n} synchronising: the caller must send a "+"
 * continuation; {n+} non-synchronising, LITERAL+). Every part is bounded:
 * line length, literal size, total size, number of literals.
 *
 * The parser turns an assembled command into arguments (atoms, quoted
 * strings, literals, NIL, parenthesised lists), as Dovecot's imap-parser
 * does. An atom may carry a bracketed section with spaces and parentheses
 * inside, as FETCH items do: BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100>. */
#ifndef CM_IMAP_PARSER_H
#define CM_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/spool.h"

enum imap_read_result {
    IMAP_READ_MORE,     /* need more bytes */
    IMAP_READ_COMMAND,  /* a complete command is in the reader */
    IMAP_READ_CONTINUE, /* send "+ OK" for a synchronising literal, then feed on */
    IMAP_READ_ERROR,    /* the command was refused: reader->error says why; the
                           rest of the command is skipped and reading goes on */
};

struct imap_reader {
    struct buf cmd;          /* lines (without CRLF) and literal bodies, in order */
    size_t line_start;       /* where the current line began in cmd */
    size_t literal_left;     /* literal bytes still to come */
    size_t n_literals;
    size_t max_line;         /* longest line, CRLF excluded */
    size_t max_literal;      /* largest literal */
    size_t max_total;        /* largest command */
    const char *error;       /* with IMAP_READ_ERROR */
    bool skipping;           /* discarding the rest of a refused command */
    size_t skip_literal;     /* literal bytes to discard while skipping */
    bool done;               /* a command is complete and not yet taken */
    char error_tag[64];      /* with IMAP_READ_ERROR: the refused command's tag, or "" */
    /* The external literal: one literal of an APPEND larger than
     * max_literal (up to max_ext) streams into *ext instead of cmd; cmd
     * keeps its marker at ext_pos (offset of its '{'). Off when ext is NULL. */
    struct spool *ext;
    size_t max_ext;
    size_t ext_pos, ext_left;
    bool ext_used, ext_failed; /* failed: a spool write failed, bytes dropped */
};

void imap_reader_init(struct imap_reader *r, size_t max_literal);
/* Limits for the next commands (line, literal, whole command). */
void imap_reader_set_limits(struct imap_reader *r, size_t max_line, size_t max_literal,
                            size_t max_total);
/* Lets an APPEND literal of up to max_ext bytes stream into spool (not
 * owned); NULL turns it off. */
void imap_reader_set_ext(struct imap_reader *r, struct spool *spool, size_t max_ext);
/* The command's external literal marker (a pointer into the command), or NULL. */
const char *imap_reader_ext_marker(const struct imap_reader *r);
void imap_reader_free(struct imap_reader *r);
/* Consumes bytes from p; *used says how many. Stops after each complete
 * command, continuation request or error. */
enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *p, size_t n,
                                       size_t *used);
/* The complete command (valid until imap_reader_next). */
const char *imap_reader_command(const struct imap_reader *r, size_t *len);
/* Drops the command taken; frees memory when idle. */
void imap_reader_next(struct imap_reader *r);

/* ---------- arguments ---------- */

enum imap_arg_type {
    IMAP_ARG_NIL,     /* the atom NIL; str holds it as written */
    IMAP_ARG_ATOM,
    IMAP_ARG_STRING,  /* quoted string, unescaped */
    IMAP_ARG_LITERAL,
    IMAP_ARG_LIST,
};

struct imap_arg {
    enum imap_arg_type type;
    const char *str;          /* NUL-terminated for ATOM, STRING; LITERAL may hold NULs */
    size_t len;
    struct imap_arg *list;    /* LIST: its elements */
    size_t n;
    bool ext;                 /* LITERAL whose bytes are in the reader's spool
                                 (str is "" and len 0 here) */
};

struct imap_args {
    struct imap_arg *v;       /* top-level arguments */
    size_t n;
    struct buf strings;       /* unescaped copies */
    struct imap_arg **blocks; /* every allocated array, for freeing */
    size_t n_blocks;
};

/* Parses text (a command without its tag and name, or any argument text).
 * Returns 0, or -1 with *error set to a reason for a BAD reply. */
int imap_parse_args(const char *text, size_t len, struct imap_args *out, const char **error);
/* The same; the literal whose '{' is at ext_marker (inside text; NULL for
 * none) is the external one (imap_reader_ext_marker): it takes no bytes. */
int imap_parse_args_ext(const char *text, size_t len, const char *ext_marker,
                        struct imap_args *out, const char **error);
void imap_args_free(struct imap_args *a);

/* Splits a command into tag, command name (upper-cased into name) and the
 * rest. Returns 0, or -1 with *error. */
int imap_split_command(const char *cmd, size_t len, char *tag, size_t taglen, char *name,
                       size_t namelen, const char **rest, size_t *restlen, const char **error);

/* Helpers on parsed arguments. */
/* ATOM, STRING, LITERAL, or NIL (an astring may be the atom NIL: its str is
 * "NIL" as written); test for IMAP_ARG_NIL first where an nstring is meant. */
bool imap_arg_is_string(const struct imap_arg *a);
bool imap_arg_atom_eq(const struct imap_arg *a, const char *atom); /* case-insensitive */

#endif
