// SPDX-License-Identifier: MIT
#include <inttypes.h>

#include <string.h>

#include "json.h"

static void put_escaped(FILE *f, const void *s, size_t n)
{
        const unsigned char *p = s;

        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = p[i];

                switch (c) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        /* Control bytes and non-ASCII are escaped: output is always valid UTF-8. */
                        if (c < 0x20 || c >= 0x7f)
                                fprintf(f, "\\u%04x", c);
                        else
                                fputc(c, f);
                }
        }
        fputc('"', f);
}

/* The comma before a member and its key. */
static void sep(struct json *j, const char *key)
{
        if (!j->first[j->depth])
                fputc(',', j->f);
        j->first[j->depth] = false;
        if (key) {
                put_escaped(j->f, key, strlen(key));
                fputc(':', j->f);
        }
}

static void open_level(struct json *j, char c)
{
        fputc(c, j->f);
        if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
                j->depth++;
        j->first[j->depth] = true;
}

void json_begin(struct json *j, FILE *f)
{
        j->f = f;
        j->depth = 0;
        j->first[0] = true;
        open_level(j, '{');
}

void json_end(struct json *j)
{
        fputc('}', j->f);
        j->depth--;
        if (j->depth <= 0)
                fputc('\n', j->f);
}

void json_obj(struct json *j, const char *key)
{
        sep(j, key);
        open_level(j, '{');
}

void json_obj_end(struct json *j)
{
        fputc('}', j->f);
        j->depth--;
}

void json_arr(struct json *j, const char *key)
{
        sep(j, key);
        open_level(j, '[');
}

void json_arr_end(struct json *j)
{
        fputc(']', j->f);
        j->depth--;
}

void json_strn(struct json *j, const char *key, const void *s, size_t n)
{
        sep(j, key);
        put_escaped(j->f, s, n);
}

void json_str(struct json *j, const char *key, const char *s)
{
        json_strn(j, key, s, strlen(s));
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
        sep(j, key);
        fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
        sep(j, key);
        fprintf(j->f, "%" PRId64, v);
}

void json_hex(struct json *j, const char *key, uint64_t v)
{
        sep(j, key);
        fprintf(j->f, "\"0x%" PRIx64 "\"", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
        sep(j, key);
        fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
        sep(j, key);
        fputs("null", j->f);
}

void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n)
{
        sep(j, key);
        fputc('"', j->f);
        for (size_t i = 0; i < n; i++)
                fprintf(j->f, "%02x", p[i]);
        fputc('"', j->f);
}
