/* Faults: the body of POST /links/NAME/faults checked field by field, and
 * the effect of the faults that hit one direction of a connection. */
#include "proxy/faults.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const TYPE_NAMES[] = {"latency", "bandwidth", "slice", "blackhole", "limit", "reset", "cut"};

const char *px_fault_type_name(px_fault_type t) { return TYPE_NAMES[t]; }

const char *px_dir_name(int dirs) { return dirs == PX_UP ? "up" : dirs == PX_DOWN ? "down" : "both"; }

/* The parameters of each type: the only keys besides type, direction and
 * probability it accepts. */
static const char *const PARAMS[][3] = {
    [F_LATENCY] = {"ms", "jitter_ms", NULL},
    [F_BANDWIDTH] = {"kbps", NULL, NULL},
    [F_SLICE] = {"bytes", "delay_ms", NULL},
    [F_BLACKHOLE] = {NULL, NULL, NULL},
    [F_LIMIT] = {"bytes", NULL, NULL},
    [F_RESET] = {NULL, NULL, NULL},
    [F_CUT] = {NULL, NULL, NULL},
};

static int param_known(px_fault_type t, const char *key)
{
    for (int i = 0; i < 3 && PARAMS[t][i]; i++)
        if (strcmp(PARAMS[t][i], key) == 0) return 1;
    return 0;
}

#define MAX_MS 3600000.0 /* an hour: beyond it a test waits on nothing */

/* A number field in [lo, hi]; integral when asked. */
static int number_in(const jf_field *f, double lo, double hi, int integral, double *out, char *err, size_t errsz)
{
    if (f->type != JF_NUMBER) {
        snprintf(err, errsz, "%s must be a number", f->key);
        return -1;
    }
    if (!(f->number >= lo && f->number <= hi) || (integral && f->number != floor(f->number))) {
        snprintf(err, errsz, "%s must be %s from %g to %g, got %g", f->key, integral ? "an integer" : "a number", lo,
                 hi, f->number);
        return -1;
    }
    *out = f->number;
    return 0;
}

int px_fault_parse(const jf_field *fields, int n, px_fault *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    out->dirs = PX_BOTH;
    out->probability = 1;
    int type = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(fields[i].key, "type") == 0) {
            if (fields[i].type != JF_STRING) {
                snprintf(err, errsz, "type must be a string");
                return -1;
            }
            for (int t = 0; t < (int)(sizeof TYPE_NAMES / sizeof *TYPE_NAMES); t++)
                if (strcmp(fields[i].text, TYPE_NAMES[t]) == 0) type = t;
            if (type < 0) {
                snprintf(err, errsz,
                         "unknown fault type '%.64s' (latency, bandwidth, slice, blackhole, limit, reset, cut)",
                         fields[i].text);
                return -1;
            }
        }
    if (type < 0) {
        snprintf(err, errsz, "type is required (latency, bandwidth, slice, blackhole, limit, reset, cut)");
        return -1;
    }
    out->type = (px_fault_type)type;
    int have_ms = 0, have_kbps = 0, have_bytes = 0, have_dir = 0;
    for (int i = 0; i < n; i++) {
        const jf_field *f = &fields[i];
        double v;
        if (strcmp(f->key, "type") == 0) continue;
        if (strcmp(f->key, "direction") == 0) {
            if (f->type != JF_STRING) {
                snprintf(err, errsz, "direction must be \"up\", \"down\" or \"both\"");
                return -1;
            }
            if (strcmp(f->text, "up") == 0) out->dirs = PX_UP;
            else if (strcmp(f->text, "down") == 0) out->dirs = PX_DOWN;
            else if (strcmp(f->text, "both") == 0) out->dirs = PX_BOTH;
            else {
                snprintf(err, errsz, "direction must be \"up\", \"down\" or \"both\", got '%.64s'", f->text);
                return -1;
            }
            have_dir = 1;
            continue;
        }
        if (strcmp(f->key, "probability") == 0) {
            if (number_in(f, 0, 1, 0, &out->probability, err, errsz) != 0) return -1;
            continue;
        }
        if (!param_known(out->type, f->key)) {
            snprintf(err, errsz, "unknown parameter '%.64s' for a %s fault", f->key, TYPE_NAMES[type]);
            return -1;
        }
        if (strcmp(f->key, "ms") == 0) {
            if (number_in(f, 0, MAX_MS, 0, &out->ms, err, errsz) != 0) return -1;
            have_ms = 1;
        } else if (strcmp(f->key, "jitter_ms") == 0) {
            if (number_in(f, 0, MAX_MS, 0, &out->jitter_ms, err, errsz) != 0) return -1;
        } else if (strcmp(f->key, "kbps") == 0) {
            if (number_in(f, 0.001, 10e6, 0, &out->kbps, err, errsz) != 0) return -1;
            have_kbps = 1;
        } else if (strcmp(f->key, "bytes") == 0) {
            if (number_in(f, out->type == F_SLICE ? 1 : 0, 1e15, 1, &v, err, errsz) != 0) return -1;
            out->bytes = (uint64_t)v;
            have_bytes = 1;
        } else if (strcmp(f->key, "delay_ms") == 0) {
            if (number_in(f, 0, MAX_MS, 0, &out->delay_ms, err, errsz) != 0) return -1;
        }
    }
    if (out->type == F_LATENCY && !have_ms) return snprintf(err, errsz, "a latency fault needs ms"), -1;
    if (out->type == F_BANDWIDTH && !have_kbps) return snprintf(err, errsz, "a bandwidth fault needs kbps"), -1;
    if ((out->type == F_SLICE || out->type == F_LIMIT) && !have_bytes)
        return snprintf(err, errsz, "a %s fault needs bytes", TYPE_NAMES[type]), -1;
    /* a reset or a cut ends whole connections: it has no direction */
    if ((out->type == F_RESET || out->type == F_CUT) && have_dir && out->dirs != PX_BOTH)
        return snprintf(err, errsz, "a %s fault acts on whole connections: direction must be \"both\"",
                        TYPE_NAMES[type]), -1;
    /* a closed listener refuses everyone: a cut cannot be partial */
    if (out->type == F_CUT && out->probability != 1)
        return snprintf(err, errsz, "a cut fault takes the whole link down: probability must be 1"), -1;
    return 0;
}

void px_fault_json(const px_fault *f, strbuf *sb)
{
    sb_printf(sb, "{\"id\":%d,\"type\":\"%s\",\"direction\":\"%s\",\"probability\":%g", f->id,
              TYPE_NAMES[f->type], px_dir_name(f->dirs), f->probability);
    switch (f->type) {
    case F_LATENCY: sb_printf(sb, ",\"ms\":%g,\"jitter_ms\":%g", f->ms, f->jitter_ms); break;
    case F_BANDWIDTH: sb_printf(sb, ",\"kbps\":%g", f->kbps); break;
    case F_SLICE: sb_printf(sb, ",\"bytes\":%llu,\"delay_ms\":%g", (unsigned long long)f->bytes, f->delay_ms); break;
    case F_LIMIT: sb_printf(sb, ",\"bytes\":%llu", (unsigned long long)f->bytes); break;
    default: break;
    }
    sb_printf(sb, ",\"affected\":%llu}", (unsigned long long)f->affected);
}

void px_effect_add(px_effect *e, const px_fault *f)
{
    switch (f->type) {
    case F_LATENCY:
        if (f->ms + f->jitter_ms > e->delay_ms + e->jitter_ms) e->delay_ms = f->ms, e->jitter_ms = f->jitter_ms;
        break;
    case F_BANDWIDTH: {
        double bps = f->kbps * 1024.0;
        if (e->bytes_per_s == 0 || bps < e->bytes_per_s) e->bytes_per_s = bps;
        break;
    }
    case F_SLICE:
        if (e->slice == 0 || f->bytes < e->slice) e->slice = f->bytes;
        if (f->delay_ms > (double)e->slice_delay_ms) e->slice_delay_ms = (uint64_t)f->delay_ms;
        break;
    case F_BLACKHOLE: e->blackhole = 1; break;
    case F_LIMIT:
        if (!e->has_limit || f->bytes < e->limit) e->limit = f->bytes;
        e->has_limit = 1;
        break;
    default: break;
    }
}

int px_effect_shapes(const px_effect *e)
{
    return e->delay_ms > 0 || e->jitter_ms > 0 || e->bytes_per_s > 0 || e->slice > 0 || e->blackhole || e->has_limit;
}

static uint64_t rng_state;

double px_random(void)
{
    if (!rng_state) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15u;
    }
    /* xorshift64*: good enough for a coin toss per connection */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Du) >> 11) / 9007199254740992.0;
}

double px_effect_delay(const px_effect *e)
{
    double ms = e->delay_ms;
    if (e->jitter_ms > 0) ms += (px_random() * 2 - 1) * e->jitter_ms;
    return ms > 0 ? ms / 1000.0 : 0;
}
