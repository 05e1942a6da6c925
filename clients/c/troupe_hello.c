/* A minimal C client of Troupe's wire protocol (docs/PROTOCOL.md): libzmq, protobuf-c and libxxhash.
 * It says Hello to a learner's control endpoint, prints the Welcome (or the Reject), says Bye and exits.
 *
 *   troupe-hello --learner tcp://HOST:5555 --insecure-plaintext [--identity NAME] [--timeout SECONDS]
 *   troupe-hello --learner tcp://HOST:5555 --key NAME.key_secret --learner-key learner.key [...]
 *
 * Exit status: 0 welcomed; 1 refused, no answer, or an answer that is not a valid message; 2 usage. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
#include <zmq.h>

#include "troupe/v1/envelope.pb-c.h"

enum { PROTOCOL_MAJOR = 2, PROTOCOL_MINOR = 4 };

static void usage(void) {
    fprintf(stderr,
            "usage: troupe-hello --learner tcp://HOST:PORT (--insecure-plaintext | --key NAME.key_secret --learner-key LEARNER.key)\n"
            "                    [--identity NAME] [--timeout SECONDS]\n");
}

/* Reads `public-key = "..."` or `secret-key = "..."` (40 Z85 characters) from a zcert file. */
static int read_key(const char *path, const char *field, char key[41]) {
    FILE *file = fopen(path, "r");
    if (!file) {
        fprintf(stderr, "troupe-hello: cannot read key file %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, file)) {
        char *at = strstr(line, field);
        if (!at) continue;
        char *open = strchr(at, '"');
        char *close = open ? strchr(open + 1, '"') : NULL;
        if (open && close && close - open - 1 == 40) {
            memcpy(key, open + 1, 40);
            key[40] = 0;
            found = 1;
        }
    }
    fclose(file);
    if (!found) fprintf(stderr, "troupe-hello: %s has no valid %s (40 Z85 characters in quotes)\n", path, field);
    return found;
}

/* Frames a header-only message (§2): the Envelope without checksum, then field 15 = XXH64 big-endian. */
static int send_message(void *socket, Troupe__V1__Envelope *envelope) {
    size_t length = troupe__v1__envelope__get_packed_size(envelope);
    uint8_t *frame = malloc(length + 10);
    troupe__v1__envelope__pack(envelope, frame);
    uint64_t digest = XXH64(frame, length, 0);
    frame[length] = 0x7A;
    frame[length + 1] = 0x08;
    for (int i = 0; i < 8; i++) frame[length + 2 + i] = (uint8_t)(digest >> (56 - 8 * i));
    int sent = zmq_send(socket, frame, length + 10, 0);
    free(frame);
    return sent >= 0;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Receives one message within the deadline and checks its framing (§2). NULL on timeout or refusal
 * (with the reason in `problem`). */
static Troupe__V1__Envelope *receive_message(void *socket, long long deadline, char *problem, size_t problem_size) {
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    long long left = deadline - now_ms();
    if (left <= 0 || zmq_poll(&item, 1, (long)left) <= 0 || !(item.revents & ZMQ_POLLIN)) {
        snprintf(problem, problem_size, "timeout");
        return NULL;
    }
    zmq_msg_t parts[8];
    int count = 0, more = 1;
    while (more) {
        if (count == 8) { snprintf(problem, problem_size, "more than 7 raw frames"); return NULL; }
        zmq_msg_init(&parts[count]);
        if (zmq_msg_recv(&parts[count], socket, 0) < 0) { snprintf(problem, problem_size, "receive failed: %s", zmq_strerror(zmq_errno())); return NULL; }
        more = zmq_msg_more(&parts[count]);
        count++;
    }
    Troupe__V1__Envelope *envelope = NULL;
    const uint8_t *header = zmq_msg_data(&parts[0]);
    size_t header_length = zmq_msg_size(&parts[0]);
    if (header_length < 10 || header[header_length - 10] != 0x7A || header[header_length - 9] != 0x08) {
        snprintf(problem, problem_size, "the header does not end with the checksum field");
        goto done;
    }
    XXH64_state_t *state = XXH64_createState();
    XXH64_reset(state, 0);
    XXH64_update(state, header, header_length - 10);
    for (int i = 1; i < count; i++) XXH64_update(state, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]));
    uint64_t digest = XXH64_digest(state);
    XXH64_freeState(state);
    uint64_t stored = 0;
    for (int i = 0; i < 8; i++) stored = stored << 8 | header[header_length - 8 + i];
    if (digest != stored) { snprintf(problem, problem_size, "checksum mismatch"); goto done; }
    envelope = troupe__v1__envelope__unpack(NULL, header_length, header);
    if (!envelope) { snprintf(problem, problem_size, "the header is not an Envelope"); goto done; }
    if (envelope->frame_count != (uint32_t)(count - 1) || envelope->n_frame_lengths != (size_t)(count - 1)) {
        snprintf(problem, problem_size, "frame_count %" PRIu32 " but %d raw frames", envelope->frame_count, count - 1);
        troupe__v1__envelope__free_unpacked(envelope, NULL);
        envelope = NULL;
    }
done:
    for (int i = 0; i < count; i++) zmq_msg_close(&parts[i]);
    return envelope;
}

static const char *reject_reason(int reason) {
    switch (reason) {
    case TROUPE__V1__REJECT_REASON__REJECT_REASON_PROTOCOL_MAJOR: return "PROTOCOL_MAJOR";
    case TROUPE__V1__REJECT_REASON__REJECT_REASON_MALFORMED: return "MALFORMED";
    case TROUPE__V1__REJECT_REASON__REJECT_REASON_UNKNOWN_ACTOR: return "UNKNOWN_ACTOR";
    case TROUPE__V1__REJECT_REASON__REJECT_REASON_CONFIG_MISMATCH: return "CONFIG_MISMATCH";
    default: return "another reason";
    }
}

int main(int argc, char **argv) {
    const char *learner = NULL, *key_path = NULL, *learner_key_path = NULL, *identity = "c-hello";
    int plaintext = 0;
    double timeout_s = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--insecure-plaintext")) { plaintext = 1; continue; }
        if (!value) { usage(); return 2; }
        if (!strcmp(a, "--learner")) learner = value;
        else if (!strcmp(a, "--key")) key_path = value;
        else if (!strcmp(a, "--learner-key")) learner_key_path = value;
        else if (!strcmp(a, "--identity")) identity = value;
        else if (!strcmp(a, "--timeout")) {
            char *end;
            timeout_s = strtod(value, &end);
            if (*end || !(timeout_s > 0)) { fprintf(stderr, "troupe-hello: --timeout %s is not a positive number of seconds\n", value); return 2; }
        } else { fprintf(stderr, "troupe-hello: unknown option %s\n", a); usage(); return 2; }
        i++;
    }
    if (!learner) { fprintf(stderr, "troupe-hello: --learner is required\n"); usage(); return 2; }
    if (plaintext == (key_path != NULL) || (key_path != NULL) != (learner_key_path != NULL)) {
        fprintf(stderr, "troupe-hello: give either --insecure-plaintext or both --key and --learner-key\n");
        return 2;
    }

    void *context = zmq_ctx_new();
    void *socket = zmq_socket(context, ZMQ_DEALER);
    int linger = 500;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    if (key_path) {
        char public_key[41], secret_key[41], server_key[41];
        if (!read_key(key_path, "public-key", public_key) || !read_key(key_path, "secret-key", secret_key)
            || !read_key(learner_key_path, "public-key", server_key)) {
            return 2;
        }
        if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, 40) || zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_key, 40)
            || zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_key, 40)) {
            fprintf(stderr, "troupe-hello: libzmq refused the CURVE keys: %s (built without CURVE?)\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    if (zmq_connect(socket, learner) != 0) {
        fprintf(stderr, "troupe-hello: cannot connect to %s: %s\n", learner, zmq_strerror(zmq_errno()));
        return 2;
    }

    Troupe__V1__Hello hello = TROUPE__V1__HELLO__INIT;
    hello.actor_identity = (char *)identity;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    do { hello.actor_run_id = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ (uint64_t)rand(); } while (hello.actor_run_id == 0);
    hello.protocol_major = PROTOCOL_MAJOR;
    hello.protocol_minor = PROTOCOL_MINOR;
    hello.build_id = "troupe-hello (C, protobuf-c " PROTOBUF_C_VERSION ")";
    hello.thread_count = 1;
    Troupe__V1__Envelope envelope = TROUPE__V1__ENVELOPE__INIT;
    envelope.protocol_major = PROTOCOL_MAJOR;
    envelope.protocol_minor = PROTOCOL_MINOR;
    envelope.body_case = TROUPE__V1__ENVELOPE__BODY_HELLO;
    envelope.hello = &hello;
    if (!send_message(socket, &envelope)) { fprintf(stderr, "troupe-hello: send failed: %s\n", zmq_strerror(zmq_errno())); return 1; }

    char problem[256];
    Troupe__V1__Envelope *answer = receive_message(socket, now_ms() + (long long)(timeout_s * 1000), problem, sizeof problem);
    int status = 1;
    if (!answer) {
        if (!strcmp(problem, "timeout")) {
            fprintf(stderr, "troupe-hello: no answer from %s within %g s: no learner there, or it refused the connection "
                            "(%s)\n", learner, timeout_s,
                    key_path ? "a key not on its allowlist, or the wrong --learner-key" : "it may require CURVE keys");
        } else {
            fprintf(stderr, "troupe-hello: the answer from %s is not a valid message: %s\n", learner, problem);
        }
    } else if (answer->protocol_major != PROTOCOL_MAJOR) {
        fprintf(stderr, "troupe-hello: the learner speaks protocol %" PRIu32 ".%" PRIu32 ", this client %d.%d\n", answer->protocol_major,
                answer->protocol_minor, PROTOCOL_MAJOR, PROTOCOL_MINOR);
    } else if (answer->body_case == TROUPE__V1__ENVELOPE__BODY_REJECT) {
        fprintf(stderr, "troupe-hello: the learner refused the Hello: %s (%s)\n", reject_reason(answer->reject->reason),
                answer->reject->text ? answer->reject->text : "");
    } else if (answer->body_case != TROUPE__V1__ENVELOPE__BODY_WELCOME) {
        fprintf(stderr, "troupe-hello: the learner answered the Hello with body field %d, not a Welcome\n", (int)answer->body_case);
    } else {
        const Troupe__V1__Welcome *w = answer->welcome;
        printf("welcome from %s (protocol %" PRIu32 ".%" PRIu32 ")\n", learner, answer->protocol_major, answer->protocol_minor);
        printf("  run_id: %s\n", w->run_id);
        printf("  learner_epoch: %" PRIu64 "\n", w->learner_epoch);
        printf("  current_version: epoch %" PRIu64 " step %" PRIu64 "\n", w->current_version ? w->current_version->epoch : 0,
               w->current_version ? w->current_version->step : 0);
        printf("  config_digest: ");
        for (size_t i = 0; i < w->config_digest.len; i++) printf("%02x", w->config_digest.data[i]);
        printf("\n  credit: %" PRIu32 "\n  heartbeat_interval_ms: %" PRIu32 "\n  lease_size: %" PRIu32 "\n  max_staleness: %" PRIu32 "\n",
               w->credit, w->heartbeat_interval_ms, w->lease_size, w->max_staleness);
        printf("  weights_endpoint: %s\n  announce_endpoint: %s\n  logs_endpoint: %s\n", w->weights_endpoint, w->announce_endpoint,
               w->logs_endpoint);
        printf("  config_json: %zu bytes\n", strlen(w->config_json));
        status = 0;
        /* Leave at once rather than be evicted later. */
        Troupe__V1__Bye bye = TROUPE__V1__BYE__INIT;
        bye.reason = "troupe-hello done";
        Troupe__V1__Envelope goodbye = TROUPE__V1__ENVELOPE__INIT;
        goodbye.protocol_major = PROTOCOL_MAJOR;
        goodbye.protocol_minor = PROTOCOL_MINOR;
        goodbye.body_case = TROUPE__V1__ENVELOPE__BODY_BYE;
        goodbye.bye = &bye;
        send_message(socket, &goodbye);
    }
    if (answer) troupe__v1__envelope__free_unpacked(answer, NULL);
    zmq_close(socket);
    zmq_ctx_term(context);
    return status;
}
