/* queue.h: the durable outbound queue under <state_dir>/queue. One file per
 * message: an envelope header, a blank line, the message as received
 * (unstuffed, CRLF). A file is written to a temporary name, fsynced,
 * renamed into place and the directory fsynced before the submitter hears
 * success, so a 250 never loses a queued message. The federation issue's
 * delivery reads files back with queue_parse_envelope. */
#ifndef CM_SMTP_QUEUE_H
#define CM_SMTP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct uv_loop_s uv_loop_t;

#define QUEUE_ID_LEN 40
#define QUEUE_MAX_RCPTS 1000

struct queue_envelope {
    char *mail_from;          /* "" for the null sender */
    char **rcpts;
    size_t n_rcpts;
    int64_t arrival;          /* unix seconds */
    size_t body_offset;       /* where the message starts in the file */
};

/* Synchronous (worker threads): writes one message durably into dir and
 * adds it to the queue_length gauge.
 * id receives the file name. Returns 0, or -1 with errno set. */
int queue_write(const char *dir, const char *mail_from, const char *const *rcpts, size_t n_rcpts,
                const char *msg, size_t len, char id[QUEUE_ID_LEN]);

/* Messages in dir (files not starting with '.'), or -1. One readdir: for
 * the queue_length gauge at start, which queue_write and removals then keep
 * current. */
long queue_count(const char *dir);

/* Runs queue_write on the worker pool; cb runs on the loop thread with
 * status 0 or -errno. The strings and the message must stay valid until cb. */
struct queue_req;
int queue_write_async(uv_loop_t *loop, const char *dir, const char *mail_from,
                      const char *const *rcpts, size_t n_rcpts, const char *msg, size_t len,
                      void (*cb)(void *ud, int status, const char *id), void *ud);

/* Removes a queue file that was written for a message that will not be
 * acknowledged after all. 0, or -1 with errno (ENOENT counts as done). */
int queue_remove(const char *dir, const char *id);

/* Parses the envelope at the start of a queue file's bytes. Returns 0, or
 * -1 when the header is malformed. Free with queue_envelope_free. */
int queue_parse_envelope(const char *data, size_t len, struct queue_envelope *env);
void queue_envelope_free(struct queue_envelope *env);

#endif
