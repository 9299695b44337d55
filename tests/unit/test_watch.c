/* test_watch.c: the per-account change registry: synchronous delivery of
 * events, several watchers, folder filters, unwatch from a callback. */
#include "check.h"
#include "store/mailbox.h"

struct rec {
    int calls;
    struct store_event last;
    struct store_watch *self, *other; /* to unwatch from the callback */
    bool unwatch_self, unwatch_other, add_new;
};

static struct store_watch *added;

static void on_event(void *ud, const struct store_event *ev)
{
    struct rec *r = ud;
    r->calls++;
    r->last = *ev;
    if (r->unwatch_self) {
        store_unwatch(r->self);
        r->self = NULL;
    }
    if (r->unwatch_other && r->other) {
        store_unwatch(r->other);
        r->other = NULL;
    }
    if (r->add_new && !added)
        added = store_watch(ev->account, NULL, on_event, r);
}

TEST(synchronous_and_both_watchers)
{
    struct rec a = {0}, b = {0}, c = {0};
    struct store_watch *wa = store_watch("u@x.org", "INBOX", on_event, &a);
    struct store_watch *wb = store_watch("u@x.org", NULL, on_event, &b);
    struct store_watch *wc = store_watch("other@x.org", NULL, on_event, &c);
    CHECK_INT_EQ(store_watch_count(), 3);
    store_notify_append("u@x.org", "INBOX", 7, MB_SEEN, 99, wa);
    /* delivered before store_notify returned */
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(b.calls, 1);
    CHECK_INT_EQ(c.calls, 0);
    CHECK_INT_EQ(a.last.kind, STORE_EV_APPEND);
    CHECK_INT_EQ(a.last.uid, 7);
    CHECK_INT_EQ(a.last.flags, MB_SEEN);
    CHECK_INT_EQ(a.last.modseq, 99);
    CHECK(a.last.origin == wa);
    store_notify_flags("u@x.org", "Sent", 3, MB_FLAGGED, 100, NULL);
    CHECK_INT_EQ(a.calls, 1); /* other folder */
    CHECK_INT_EQ(b.calls, 2);
    CHECK_INT_EQ(b.last.kind, STORE_EV_FLAGS);
    store_notify_expunge("u@x.org", "INBOX", 7, 101, NULL);
    CHECK_INT_EQ(a.last.kind, STORE_EV_EXPUNGE);
    CHECK_INT_EQ(b.last.modseq, 101);
    store_unwatch(wa);
    store_unwatch(wb);
    store_unwatch(wc);
    CHECK_INT_EQ(store_watch_count(), 0);
}

TEST(unwatch_self_during_callback)
{
    struct rec a = {0}, b = {0};
    a.self = store_watch("u@x.org", NULL, on_event, &a);
    a.unwatch_self = true;
    struct store_watch *wb = store_watch("u@x.org", NULL, on_event, &b);
    store_notify_append("u@x.org", "INBOX", 1, 0, 1, NULL);
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(b.calls, 1);
    CHECK(a.self == NULL);
    store_notify_append("u@x.org", "INBOX", 2, 0, 2, NULL);
    CHECK_INT_EQ(a.calls, 1); /* gone */
    CHECK_INT_EQ(b.calls, 2);
    store_unwatch(wb);
    CHECK_INT_EQ(store_watch_count(), 0);
}

TEST(unwatch_other_during_callback)
{
    struct rec a = {0}, b = {0};
    /* b is registered first, so a (at the chain head) runs first and
     * removes b before the walk reaches it. */
    struct store_watch *wb = store_watch("u@x.org", NULL, on_event, &b);
    struct store_watch *wa = store_watch("u@x.org", NULL, on_event, &a);
    a.other = wb;
    a.unwatch_other = true;
    store_notify_append("u@x.org", "INBOX", 1, 0, 1, NULL);
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(b.calls, 0);
    store_unwatch(wa);
    CHECK_INT_EQ(store_watch_count(), 0);
}

TEST(watch_added_during_callback_misses_event)
{
    struct rec a = {0};
    struct store_watch *wa = store_watch("u@x.org", NULL, on_event, &a);
    a.add_new = true;
    store_notify_append("u@x.org", "INBOX", 1, 0, 1, NULL);
    CHECK_INT_EQ(a.calls, 1);
    CHECK(added != NULL);
    a.add_new = false;
    store_notify_append("u@x.org", "INBOX", 2, 0, 2, NULL);
    CHECK_INT_EQ(a.calls, 3); /* both watchers share the record */
    store_unwatch(wa);
    store_unwatch(added);
    store_unwatch(NULL);
    CHECK_INT_EQ(store_watch_count(), 0);
}

TEST(self_unwatch_then_repeat)
{
    struct rec a = {0};
    a.self = store_watch("n@x.org", NULL, on_event, &a);
    a.unwatch_self = true;
    struct store_event ev = {STORE_EV_APPEND, "n@x.org", "INBOX", 1, 0, 1, NULL};
    store_notify(&ev);
    store_notify(&ev);
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(store_watch_count(), 0);
}

int main(void)
{
    RUN(synchronous_and_both_watchers);
    RUN(unwatch_self_during_callback);
    RUN(unwatch_other_during_callback);
    RUN(watch_added_during_callback_misses_event);
    RUN(self_unwatch_then_repeat);
    return check_report();
}
