/* SPDX-License-Identifier: MIT */
/* A tiny streaming JSON writer: enough for one-object-per-line output. */
#ifndef HVREPLAY_JSON_H
#define HVREPLAY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json {
        FILE *f;
        int depth;
        bool first[16]; /* per nesting level: no comma before the next member */
};

void json_begin(struct json *j, FILE *f);       /* { */
void json_end(struct json *j);                  /* } and a newline at depth 0 */
void json_obj(struct json *j, const char *key); /* "key":{  (key NULL in arrays) */
void json_obj_end(struct json *j);              /* } */
void json_arr(struct json *j, const char *key); /* "key":[ */
void json_arr_end(struct json *j);              /* ] */
void json_str(struct json *j, const char *key, const char *s);
void json_strn(struct json *j, const char *key, const void *s, size_t n);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_hex(struct json *j, const char *key, uint64_t v); /* "0x1f" */
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n); /* "0f1e" */

#endif
