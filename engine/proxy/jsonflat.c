/* A strict reader of one flat JSON object (see jsonflat.h). Strings keep
 * to a fixed size: names, addresses and fault types are short, and a body
 * that is not has no business with the proxy. */
#include "proxy/jsonflat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *end;
    char *err;
    size_t errsz;
} reader;

static int fail(reader *r, const char *what)
{
    snprintf(r->err, r->errsz, "invalid JSON: %s", what);
    return -1;
}

static void blanks(reader *r)
{
    while (r->s < r->end && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r')) r->s++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string into out (size cap); \u escapes become UTF-8. */
static int string(reader *r, char *out, size_t cap)
{
    size_t n = 0;
    if (r->s >= r->end || *r->s != '"') return fail(r, "a string expected");
    r->s++;
    while (r->s < r->end && *r->s != '"') {
        unsigned c = (unsigned char)*r->s++;
        if (c < 0x20) return fail(r, "a control character in a string");
        if (c == '\\') {
            if (r->s >= r->end) break;
            char e = *r->s++;
            switch (e) {
            case '"': case '\\': case '/': c = (unsigned char)e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (r->end - r->s < 4) return fail(r, "a short \\u escape");
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(r->s[i]);
                    if (h < 0) return fail(r, "a bad \\u escape");
                    v = v * 16 + (unsigned)h;
                }
                r->s += 4;
                /* names are ASCII; anything else is kept as UTF-8 of the
                 * BMP code point (surrogates are not names) */
                char buf[3];
                size_t k = 0;
                if (v < 0x80) buf[k++] = (char)v;
                else if (v < 0x800) buf[k++] = (char)(0xc0 | (v >> 6)), buf[k++] = (char)(0x80 | (v & 0x3f));
                else buf[k++] = (char)(0xe0 | (v >> 12)), buf[k++] = (char)(0x80 | ((v >> 6) & 0x3f)),
                     buf[k++] = (char)(0x80 | (v & 0x3f));
                if (v == 0) return fail(r, "a NUL in a string");
                if (n + k >= cap) return fail(r, "a string too long");
                memcpy(out + n, buf, k);
                n += k;
                continue;
            }
            default: return fail(r, "a bad escape");
            }
        }
        if (n + 1 >= cap) return fail(r, "a string too long");
        out[n++] = (char)c;
    }
    if (r->s >= r->end) return fail(r, "an unterminated string");
    r->s++;
    out[n] = '\0';
    return 0;
}

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->s) < n || memcmp(r->s, word, n) != 0) return -1;
    r->s += n;
    return 0;
}

static int number(reader *r, double *out)
{
    /* JSON's grammar, checked by hand: strtod takes more (hex, inf) */
    const char *p = r->s;
    if (p < r->end && *p == '-') p++;
    if (p >= r->end || *p < '0' || *p > '9') return fail(r, "a value expected");
    if (*p == '0') p++;
    else while (p < r->end && *p >= '0' && *p <= '9') p++;
    if (p < r->end && *p == '.') {
        p++;
        if (p >= r->end || *p < '0' || *p > '9') return fail(r, "a digit expected after '.'");
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-')) p++;
        if (p >= r->end || *p < '0' || *p > '9') return fail(r, "a digit expected in an exponent");
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    char buf[64];
    if ((size_t)(p - r->s) >= sizeof buf) return fail(r, "a number too long");
    memcpy(buf, r->s, (size_t)(p - r->s));
    buf[p - r->s] = '\0';
    *out = strtod(buf, NULL);
    r->s = p;
    return 0;
}

int jf_parse(const char *s, size_t n, jf_field *out, char *err, size_t errsz)
{
    reader r = {s, s + n, err, errsz};
    blanks(&r);
    if (r.s == r.end) return 0;
    if (*r.s != '{') return fail(&r, "an object expected");
    r.s++;
    int count = 0;
    blanks(&r);
    if (r.s < r.end && *r.s == '}') {
        r.s++;
    } else {
        for (;;) {
            if (count == JF_MAX_FIELDS) return fail(&r, "too many fields");
            jf_field *f = &out[count];
            memset(f, 0, sizeof *f);
            blanks(&r);
            if (string(&r, f->key, sizeof f->key) != 0) return -1;
            for (int i = 0; i < count; i++)
                if (strcmp(out[i].key, f->key) == 0) {
                    snprintf(err, errsz, "invalid JSON: \"%s\" given twice", f->key);
                    return -1;
                }
            blanks(&r);
            if (r.s >= r.end || *r.s != ':') return fail(&r, "':' expected");
            r.s++;
            blanks(&r);
            if (r.s >= r.end) return fail(&r, "a value expected");
            if (*r.s == '"') {
                f->type = JF_STRING;
                if (string(&r, f->text, sizeof f->text) != 0) return -1;
            } else if (*r.s == '{' || *r.s == '[') {
                snprintf(err, errsz, "\"%s\": nested values are not accepted", f->key);
                return -1;
            } else if (literal(&r, "true") == 0) {
                f->type = JF_BOOL, f->number = 1;
            } else if (literal(&r, "false") == 0) {
                f->type = JF_BOOL, f->number = 0;
            } else if (literal(&r, "null") == 0) {
                f->type = JF_NULL;
            } else {
                f->type = JF_NUMBER;
                if (number(&r, &f->number) != 0) return -1;
            }
            count++;
            blanks(&r);
            if (r.s < r.end && *r.s == ',') {
                r.s++;
                continue;
            }
            if (r.s < r.end && *r.s == '}') {
                r.s++;
                break;
            }
            return fail(&r, "',' or '}' expected");
        }
    }
    blanks(&r);
    if (r.s != r.end) return fail(&r, "text after the object");
    return count;
}
