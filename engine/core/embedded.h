/* Lua sources compiled into the binary (see cmake/embed.cmake). */
#ifndef HALO_EMBEDDED_H
#define HALO_EMBEDDED_H
#include <stddef.h>

typedef struct {
    const char *name;   /* file name without .lua */
    const char *source;
    size_t size;
} halo_embedded_file;

extern const halo_embedded_file halo_embedded[];

const halo_embedded_file *embedded_find(const char *name);

#endif
