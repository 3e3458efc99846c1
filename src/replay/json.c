// SPDX-License-Identifier: MIT
#include <string.h>

#include "json.h"

static const char hexdig[] = "0123456789abcdef";

#define put   json_put_
#define putch json_putch_
#define sep   json_sep_

void json_flush_(struct json *j)
{
        if (j->len)
                fwrite(j->buf, 1, j->len, j->f);
        j->len = 0;
}

static void put_escaped(struct json *j, const void *s, size_t n)
{
        const unsigned char *p = s;

        putch(j, '"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = p[i];
                size_t run = i;

                /* Plain runs (keys, names) in one copy. */
                while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
                       p[run] != '\\')
                        run++;
                if (run > i) {
                        put(j, p + i, run - i);
                        i = run - 1;
                        continue;
                }
                switch (c) {
                case '"': put(j, "\\\"", 2); break;
                case '\\': put(j, "\\\\", 2); break;
                case '\n': put(j, "\\n", 2); break;
                case '\r': put(j, "\\r", 2); break;
                case '\t': put(j, "\\t", 2); break;
                default:
                        /* Control bytes and non-ASCII are escaped: output is always valid UTF-8. */
                        if (c < 0x20 || c >= 0x7f) {
                                char u[6] = { '\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15] };

                                put(j, u, sizeof(u));
                        } else {
                                putch(j, (char)c);
                        }
                }
        }
        putch(j, '"');
}

static void open_level(struct json *j, char c)
{
        putch(j, c);
        if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
                j->depth++;
        j->first[j->depth] = true;
}

void json_begin(struct json *j, FILE *f)
{
        j->f = f;
        j->depth = 0;
        j->len = 0;
        j->first[0] = true;
        open_level(j, '{');
}

void json_end(struct json *j)
{
        putch(j, '}');
        j->depth--;
        if (j->depth <= 0) {
                putch(j, '\n');
                json_flush_(j);
        }
}

void json_end_inline(struct json *j)
{
        putch(j, '}');
        j->depth--;
        json_flush_(j);
}

void json_obj(struct json *j, const char *key)
{
        sep(j, key);
        open_level(j, '{');
}

void json_obj_end(struct json *j)
{
        putch(j, '}');
        j->depth--;
}

void json_arr(struct json *j, const char *key)
{
        sep(j, key);
        open_level(j, '[');
}

void json_arr_end(struct json *j)
{
        putch(j, ']');
        j->depth--;
}

void json_strn(struct json *j, const char *key, const void *s, size_t n)
{
        sep(j, key);
        put_escaped(j, s, n);
}

void json_str(struct json *j, const char *key, const char *s)
{
        json_strn(j, key, s, strlen(s));
}

void json_i64(struct json *j, const char *key, int64_t v)
{
        sep(j, key);
        if (v < 0) {
                putch(j, '-');
                json_put_u64_(j, -(uint64_t)v);
        } else {
                json_put_u64_(j, (uint64_t)v);
        }
}

void json_null(struct json *j, const char *key)
{
        sep(j, key);
        put(j, "null", 4);
}

void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n)
{
        sep(j, key);
        putch(j, '"');
        for (size_t i = 0; i < n; i++) {
                putch(j, hexdig[p[i] >> 4]);
                putch(j, hexdig[p[i] & 15]);
        }
        putch(j, '"');
}

void json_ns_as_us(struct json *j, const char *key, uint64_t ns)
{
        unsigned frac = (unsigned)(ns % 1000);
        char d[4] = { '.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                      (char)('0' + frac % 10) };

        sep(j, key);
        json_put_u64_(j, ns / 1000);
        put(j, d, sizeof(d));
}
