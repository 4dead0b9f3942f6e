/* A flat JSON object reader for the control API: one object of strings,
 * numbers, booleans and nulls, nothing nested. Every body the API accepts
 * is such an object, and a nested value is an error worth naming rather
 * than something to skip. */
#ifndef HALO_PROXY_JSONFLAT_H
#define HALO_PROXY_JSONFLAT_H
#include <stddef.h>

enum { JF_STRING, JF_NUMBER, JF_BOOL, JF_NULL };

#define JF_MAX_FIELDS 16
#define JF_MAX_TEXT 256

typedef struct {
    char key[64];
    int type;
    char text[JF_MAX_TEXT]; /* JF_STRING */
    double number;          /* JF_NUMBER; JF_BOOL as 0 or 1 */
} jf_field;

/* Parses s[0..n) into out (at most JF_MAX_FIELDS); an empty or all-blank
 * body is an empty object. Returns the number of fields, or -1 with err
 * saying what is wrong. */
int jf_parse(const char *s, size_t n, jf_field *out, char *err, size_t errsz);

#endif
