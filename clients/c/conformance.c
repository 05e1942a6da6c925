/* The C side of the wire conformance check (docs/PROTOCOL.md §11).
 *
 *   conformance GOLDENS OUT
 *
 * For every golden NAME.pb (swift-protobuf binary) in GOLDENS: decodes it with protobuf-c, requires no
 * unknown fields at any depth, writes OUT/NAME.c.dump (the canonical dump, the same text
 * clients/python/troupe_client/dump.py writes for the same message) and OUT/NAME.c.pb (protobuf-c's own
 * encoding, which the Swift and Python sides decode). Exit status 0 when every message decodes, 1 naming
 * those that do not, 2 for a usage or file error. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/v1/envelope.pb-c.h"

typedef struct {
    char *text;
    size_t length, capacity;
} Buffer;

static void append(Buffer *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void append(Buffer *b, const char *format, ...) {
    for (;;) {
        va_list args;
        va_start(args, format);
        int n = vsnprintf(b->text + b->length, b->capacity - b->length, format, args);
        va_end(args);
        if (n < 0) { fprintf(stderr, "conformance: formatting failed\n"); exit(2); }
        if ((size_t)n < b->capacity - b->length) { b->length += (size_t)n; return; }
        b->capacity = b->capacity * 2 + (size_t)n + 64;
        b->text = realloc(b->text, b->capacity);
        if (!b->text) { fprintf(stderr, "conformance: out of memory\n"); exit(2); }
    }
}

static void append_hex(Buffer *b, const uint8_t *bytes, size_t length) {
    for (size_t i = 0; i < length; i++) append(b, "%02x", bytes[i]);
}

/* Bytes per element of a repeated field's array. */
static size_t element_size(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static void append_scalar(Buffer *b, ProtobufCType type, const void *p) {
    switch (type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        append(b, "%" PRId32, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: append(b, "%" PRIu32, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        append(b, "%" PRId64, *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: append(b, "%" PRIu64, *(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_FLOAT: append(b, "%.9g", (double)*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: append(b, "%.17g", *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: append(b, "%d", *(const protobuf_c_boolean *)p ? 1 : 0); break;
    case PROTOBUF_C_TYPE_ENUM: append(b, "%d", *(const int *)p); break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (s) append_hex(b, (const uint8_t *)s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *d = p;
        append_hex(b, d->data, d->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: break;
    }
}

/* A map<string, V> arrives as repeated NAMEEntry messages {key = 1, value = 2}. */
static int is_map_entry(const ProtobufCMessageDescriptor *d) {
    size_t n = strlen(d->name);
    return n > 5 && strcmp(d->name + n - 5, "Entry") == 0 && d->n_fields == 2 && d->fields[0].id == 1 && d->fields[1].id == 2
           && d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

static int compare_entries(const void *a, const void *b) {
    const ProtobufCMessage *x = *(ProtobufCMessage *const *)a, *y = *(ProtobufCMessage *const *)b;
    const ProtobufCFieldDescriptor *key = &x->descriptor->fields[0];
    return strcmp(*(char *const *)((const char *)x + key->offset), *(char *const *)((const char *)y + key->offset));
}

static int compare_field_ids(const void *a, const void *b) {
    const ProtobufCFieldDescriptor *x = *(ProtobufCFieldDescriptor *const *)a, *y = *(ProtobufCFieldDescriptor *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

static void dump(Buffer *b, const ProtobufCMessage *m, const char *prefix, int *unknown) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (m->n_unknown_fields) { *unknown = 1; }
    const ProtobufCFieldDescriptor **fields = malloc(d->n_fields * sizeof *fields);
    for (unsigned i = 0; i < d->n_fields; i++) fields[i] = &d->fields[i];
    qsort(fields, d->n_fields, sizeof *fields, compare_field_ids);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = fields[i];
        const char *base = (const char *)m;
        char path[1024];
        snprintf(path, sizeof path, "%s%s", prefix, f->name);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)(base + f->quantifier_offset);
            const char *items = *(char *const *)(base + f->offset);
            append(b, "%s#=%zu\n", path, count);
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
                ProtobufCMessage **entries = malloc((count ? count : 1) * sizeof *entries);
                memcpy(entries, items, count * sizeof *entries);
                qsort(entries, count, sizeof *entries, compare_entries);
                for (size_t k = 0; k < count; k++) {
                    const ProtobufCMessageDescriptor *ed = entries[k]->descriptor;
                    if (entries[k]->n_unknown_fields) *unknown = 1;
                    append(b, "%s[", path);
                    append_scalar(b, ed->fields[0].type, (const char *)entries[k] + ed->fields[0].offset);
                    append(b, "]=");
                    append_scalar(b, ed->fields[1].type, (const char *)entries[k] + ed->fields[1].offset);
                    append(b, "\n");
                }
                free(entries);
                continue;
            }
            for (size_t k = 0; k < count; k++) {
                const void *item = items + k * element_size(f->type);
                if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                    char nested[1100];
                    snprintf(nested, sizeof nested, "%s[%zu].", path, k);
                    dump(b, *(ProtobufCMessage *const *)item, nested, unknown);
                } else {
                    append(b, "%s[%zu]=", path, k);
                    append_scalar(b, f->type, item);
                    append(b, "\n");
                }
            }
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *nested = *(ProtobufCMessage *const *)(base + f->offset);
            if (!nested) {
                append(b, "%s=<absent>\n", path);
            } else {
                char next[1100];
                snprintf(next, sizeof next, "%s.", path);
                dump(b, nested, next, unknown);
            }
            continue;
        }
        append(b, "%s=", path);
        append_scalar(b, f->type, base + f->offset);
        append(b, "\n");
    }
    free(fields);
}

static uint8_t *read_file(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    *length = fread(data, 1, (size_t)size, file);
    fclose(file);
    return data;
}

static int write_file(const char *path, const void *data, size_t length) {
    FILE *file = fopen(path, "wb");
    if (!file) return 0;
    int ok = fwrite(data, 1, length, file) == length;
    return fclose(file) == 0 && ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: conformance GOLDENS OUT\n");
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) { fprintf(stderr, "conformance: cannot open %s\n", argv[1]); return 2; }
    int checked = 0, failed = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        const char *name = entry->d_name;
        size_t n = strlen(name);
        const char *dot = strchr(name, '.');
        if (n < 4 || strcmp(name + n - 3, ".pb") != 0 || dot != name + n - 3) continue;
        char path[4096], stem[1024];
        snprintf(stem, sizeof stem, "%.*s", (int)(n - 3), name);
        snprintf(path, sizeof path, "%s/%s", argv[1], name);
        size_t length = 0;
        uint8_t *data = read_file(path, &length);
        if (!data) { fprintf(stderr, "conformance: cannot read %s\n", path); return 2; }
        checked++;
        Troupe__V1__Envelope *message = troupe__v1__envelope__unpack(NULL, length, data);
        free(data);
        if (!message) {
            fprintf(stderr, "conformance: %s: protobuf-c does not decode it\n", name);
            failed++;
            continue;
        }
        Buffer b = {malloc(4096), 0, 4096};
        b.text[0] = 0;
        int unknown = 0;
        dump(&b, &message->base, "", &unknown);
        if (unknown) {
            fprintf(stderr, "conformance: %s: decoded with unknown fields\n", name);
            failed++;
        }
        size_t packed_length = troupe__v1__envelope__get_packed_size(message);
        uint8_t *packed = malloc(packed_length ? packed_length : 1);
        troupe__v1__envelope__pack(message, packed);
        snprintf(path, sizeof path, "%s/%s.c.pb", argv[2], stem);
        int ok = write_file(path, packed, packed_length);
        snprintf(path, sizeof path, "%s/%s.c.dump", argv[2], stem);
        ok = ok && write_file(path, b.text, b.length);
        if (!ok) { fprintf(stderr, "conformance: cannot write %s\n", path); return 2; }
        free(packed);
        free(b.text);
        troupe__v1__envelope__free_unpacked(message, NULL);
    }
    closedir(dir);
    if (checked == 0) { fprintf(stderr, "conformance: no golden NAME.pb files in %s\n", argv[1]); return 2; }
    if (failed) { fprintf(stderr, "conformance: %d of %d messages failed\n", failed, checked); return 1; }
    printf("conformance: ok: protobuf-c decoded %d golden messages and re-encoded them\n", checked);
    return 0;
}
