/* SPDX-License-Identifier: MIT */
/* A tiny streaming JSON writer: enough for one-object-per-line output. */
#ifndef HVREPLAY_JSON_H
#define HVREPLAY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * Members are formatted into buf and written to f when the top-level
 * object ends (or buf fills): jsonl output runs at a million lines a
 * second, which stdio's per-call formatting cannot.  Nothing else may
 * write to f between json_begin and json_end.
 */
struct json {
        FILE *f;
        int depth;
        bool first[16]; /* per nesting level: no comma before the next member */
        size_t len;
        char buf[4096];
};

/* Internal: the buffer primitives, inline so that keys' lengths fold. */
void json_flush_(struct json *j);

static inline void json_put_(struct json *j, const void *s, size_t n)
{
        if (j->len + n > sizeof(j->buf)) {
                json_flush_(j);
                if (n > sizeof(j->buf)) {
                        fwrite(s, 1, n, j->f);
                        return;
                }
        }
        memcpy(j->buf + j->len, s, n);
        j->len += n;
}

static inline void json_putch_(struct json *j, char c)
{
        if (j->len == sizeof(j->buf))
                json_flush_(j);
        j->buf[j->len++] = c;
}

/*
 * The comma before a member and its key.  Keys are this program's own
 * identifiers (literals and name tables): nothing in them needs escaping.
 */
static inline void json_sep_(struct json *j, const char *key)
{
        size_t n = key ? strlen(key) : 0;

        if (j->len + n + 4 > sizeof(j->buf))
                json_flush_(j);
        if (!j->first[j->depth])
                j->buf[j->len++] = ',';
        j->first[j->depth] = false;
        if (key) {
                j->buf[j->len++] = '"';
                memcpy(j->buf + j->len, key, n);
                j->len += n;
                j->buf[j->len++] = '"';
                j->buf[j->len++] = ':';
        }
}

void json_begin(struct json *j, FILE *f);       /* { */
void json_end(struct json *j);                  /* } and a newline at depth 0 */
void json_end_inline(struct json *j);           /* } without the newline: an array's element */
void json_obj(struct json *j, const char *key); /* "key":{  (key NULL in arrays) */
void json_obj_end(struct json *j);              /* } */
void json_arr(struct json *j, const char *key); /* "key":[ */
void json_arr_end(struct json *j);              /* ] */
void json_str(struct json *j, const char *key, const char *s);
void json_strn(struct json *j, const char *key, const void *s, size_t n);
void json_i64(struct json *j, const char *key, int64_t v);
void json_null(struct json *j, const char *key);
void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n); /* "0f1e" */
void json_ns_as_us(struct json *j, const char *key, uint64_t ns); /* 1234.567: exact, no float */

static inline void json_put_u64_(struct json *j, uint64_t v)
{
        char d[20];
        size_t n = sizeof(d);

        do {
                d[--n] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        json_put_(j, d + n, sizeof(d) - n);
}

static inline void json_u64(struct json *j, const char *key, uint64_t v)
{
        json_sep_(j, key);
        json_put_u64_(j, v);
}

/* "0x1f" */
static inline void json_hex(struct json *j, const char *key, uint64_t v)
{
        char d[2 + 16 + 2];
        size_t n = sizeof(d);

        json_sep_(j, key);
        d[--n] = '"';
        do {
                d[--n] = "0123456789abcdef"[v & 15];
                v >>= 4;
        } while (v);
        d[--n] = 'x';
        d[--n] = '0';
        d[--n] = '"';
        json_put_(j, d + n, sizeof(d) - n);
}

static inline void json_bool(struct json *j, const char *key, bool v)
{
        json_sep_(j, key);
        if (v)
                json_put_(j, "true", 4);
        else
                json_put_(j, "false", 5);
}

#endif
