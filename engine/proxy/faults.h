/* What a fault is and what it does to the bytes of one direction of one
 * connection: parsed from the control API's body, rendered back as JSON,
 * and summed up as an effect that proxy/link.c applies when it reads and
 * writes. Nothing here owns a socket. */
#ifndef HALO_PROXY_FAULTS_H
#define HALO_PROXY_FAULTS_H
#include "core/util.h"
#include "proxy/jsonflat.h"

#include <stdint.h>

typedef enum { F_LATENCY, F_BANDWIDTH, F_SLICE, F_BLACKHOLE, F_LIMIT, F_RESET, F_CUT } px_fault_type;

/* The most faults one link holds at once: a test stacks a few. */
#define PX_MAX_FAULTS 32

/* "up" is client to upstream, "down" upstream to client */
enum { PX_UP = 1, PX_DOWN = 2, PX_BOTH = 3 };

typedef struct {
    int id;
    px_fault_type type;
    int dirs;
    double probability;
    double ms, jitter_ms; /* latency */
    double kbps;          /* bandwidth, kilobytes (1024 bytes) per second */
    uint64_t bytes;       /* slice size; limit */
    double delay_ms;      /* slice */
    uint64_t affected;    /* connections it was applied to */
} px_fault;

/* Reads a fault from the body's fields. Returns 0, or -1 with err naming
 * the problem (an unknown type or key, a wrong type, a value out of
 * range): the API's 400. */
int px_fault_parse(const jf_field *fields, int n, px_fault *out, char *err, size_t errsz);

const char *px_fault_type_name(px_fault_type t);
const char *px_dir_name(int dirs);
void px_fault_json(const px_fault *f, strbuf *sb);

/* The sum of the faults on one direction of a connection. */
typedef struct {
    double delay_ms, jitter_ms; /* latency: largest wins */
    double bytes_per_s;         /* bandwidth: 0 = unlimited; smallest wins */
    uint64_t slice, slice_delay_ms;
    int blackhole;
    uint64_t limit; /* 0 = none; smallest wins */
    int has_limit;
} px_effect;

void px_effect_add(px_effect *e, const px_fault *f);
/* Whether the effect needs anything beyond copying bytes as they come. */
int px_effect_shapes(const px_effect *e);
/* A chunk's delay in seconds: ms plus or minus uniform jitter, never < 0. */
double px_effect_delay(const px_effect *e);

/* Uniform in [0, 1): the per-connection toss against a fault's
 * probability. */
double px_random(void);

#endif
