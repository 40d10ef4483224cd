#ifndef MODELCACHE_CAVAHI_SHIM_H
#define MODELCACHE_CAVAHI_SHIM_H
#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-client/lookup.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/timeval.h>
#include <avahi-common/watch.h>
#include <stddef.h>

/* Swift cannot call the AvahiPoll function-pointer members as conveniently as plain
 * functions, and cannot index AvahiAddress's union arrays; these prefixed helpers do it. */

/** A disarmed timeout on `api`; arm it with modelcache_avahi_timeout_arm. */
static inline AvahiTimeout *modelcache_avahi_timeout_new(const AvahiPoll *api, AvahiTimeoutCallback callback, void *userdata) {
    return api->timeout_new(api, NULL, callback, userdata);
}

/** Fire `t` once, `msec` milliseconds from now. */
static inline void modelcache_avahi_timeout_arm(const AvahiPoll *api, AvahiTimeout *t, unsigned msec) {
    struct timeval tv;
    avahi_elapse_time(&tv, msec, 0);
    api->timeout_update(t, &tv);
}

static inline void modelcache_avahi_timeout_disarm(const AvahiPoll *api, AvahiTimeout *t) {
    api->timeout_update(t, NULL);
}

static inline void modelcache_avahi_timeout_free(const AvahiPoll *api, AvahiTimeout *t) {
    api->timeout_free(t);
}

/** 1 when `a` is an IPv6 link-local address (fe80::/10), which needs a %scope to be usable. */
static inline int modelcache_avahi_address_is_ipv6_link_local(const AvahiAddress *a) {
    return a->proto == AVAHI_PROTO_INET6 && a->data.ipv6.address[0] == 0xfe && (a->data.ipv6.address[1] & 0xc0) == 0x80;
}

#endif
