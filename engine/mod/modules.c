/* The host modules, one line each, in the style of Lua's linit.c. To add
 * one: write mod/NAME.c (luaopen_NAME) or mod/NAME.lua and list it here;
 * tests/engine/test_modules.py holds this table, the docs and the files
 * to each other. */
#include "mod/modules.h"

const halo_module halo_modules[] = {
    {"time", luaopen_time, 0, NULL, "sleep, the wall clock and the monotonic clock"},
    {"task", luaopen_task, 0, NULL, "run functions side by side: spawn, join with a timeout, cancel"},
    {"json", luaopen_json, 0, NULL, "decode and encode JSON; json.null"},
    {"zlib", luaopen_zlib, 0, NULL, "inflate, deflate, gzip, checksums, with a size cap"},
    {"proc", luaopen_proc, 0, NULL, "run a command with a timeout, capture its output"},
    {"errors", luaopen_errors, 0, NULL, "make and recognise the one error type: errors.new, errors.is"},
    {"http", NULL, 1, NULL, "HTTP client on libcurl: requests, timings, history"},
    {"sql", NULL, 1, NULL, "PostgreSQL client on libpq: query, exec, cancel"},
    {"docker", NULL, 0, "mod/docker", "containers, compose services, faults with undo"},
    {"traffic", NULL, 0, "mod/traffic", "steady request load with a record of every request"},
    {"eventually", NULL, 0, "mod/eventually", "retry a probe until it holds or time runs out"},
    {"netfault", NULL, 0, "mod/netfault", "network faults through halo proxy: latency, cuts, resets, with undo"},
    {"undo", NULL, 0, "mod/undo", "remove what a check creates (an HTTP request, as data), also after kill -9"},
    {NULL, NULL, 0, NULL, NULL},
};
