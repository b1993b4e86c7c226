/*
 * sendfile(outFd, inFd, position, length) -> Promise<bytesSent>
 *
 * Zero-copy file -> socket for the public file server: the kernel copies page-cache pages straight to the
 * socket, where read+write would copy every byte into user memory and back (and do all socket writes on
 * the JS thread). Runs as an async work item on libuv's thread pool because reading the file may block on
 * a slow (cloud/FUSE) mount. The pool is small (4 threads by default) and shared with fs reads, so one call
 * never waits long for a slow client: the socket is non-blocking, and when it is full the call polls for
 * POLLOUT at most POLL_BUDGET_MS in total and then returns what it sent (possibly 0) for JS to call again.
 *
 * Both descriptors are dup()ed on the JS thread before the work is queued and closed when it finishes: if
 * Node closes the socket (client gone, token revoked) while a call runs on the pool, the fd number may be
 * reused at once by another connection, and file bytes must never go to it.
 *
 * Errors reject with an Error whose `code` is the errno name (EPIPE, ECONNRESET, EINVAL, ...), or EOF when
 * `position` is at or past the end of the file (it shrank while being served).
 * Linux uses sendfile(2) with an explicit offset (the fd's own offset is untouched). The macOS branch uses
 * its sendfile(fd, s, offset, &len, NULL, 0); it is compiled and tested only on macOS, which this project's
 * CI does not have: treat it as untested.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/sendfile.h>
#elif defined(__APPLE__)
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#endif

#define POLL_BUDGET_MS 50

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int out_fd;
  int in_fd;
  int64_t position;
  int64_t length;
  int64_t sent;
  int err;
} call_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One sendfile(2) of at most `want` bytes at `*pos`. Returns bytes sent (>= 0) or -1 with errno set;
 * on macOS a partial send before EAGAIN/EINTR is returned as a positive count. */
static int64_t send_once(int out_fd, int in_fd, int64_t *pos, int64_t want) {
#if defined(__linux__)
  off_t off = (off_t)*pos;
  /* Linux transfers at most 0x7ffff000 bytes per call. */
  size_t n = want > 0x7ffff000 ? 0x7ffff000 : (size_t)want;
  ssize_t r = sendfile(out_fd, in_fd, &off, n);
  if (r > 0) *pos += r;
  return r;
#elif defined(__APPLE__)
  off_t len = (off_t)want;
  int r = sendfile(in_fd, out_fd, (off_t)*pos, &len, NULL, 0);
  if (len > 0) {
    *pos += len;
    return len; /* bytes went even if r == -1 with EAGAIN/EINTR */
  }
  if (r == 0) return 0; /* end of file */
  return -1;
#else
  (void)out_fd; (void)in_fd; (void)pos; (void)want;
  errno = ENOSYS;
  return -1;
#endif
}

static void execute(napi_env env, void *data) {
  (void)env;
  call_t *c = (call_t *)data;
  int64_t pos = c->position;
  int64_t deadline = 0;
  while (c->sent < c->length) {
    int64_t r = send_once(c->out_fd, c->in_fd, &pos, c->length - c->sent);
    if (r > 0) {
      c->sent += r;
      continue;
    }
    if (r == 0) {
      /* End of file (it shrank while served). With bytes sent, return them; the next call reports EOF. */
      if (c->sent == 0) c->err = -1;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* Socket full. Sent something already: give the thread back now. Otherwise wait a little. */
      if (c->sent > 0) break;
      int64_t t = now_ms();
      if (deadline == 0) deadline = t + POLL_BUDGET_MS;
      if (t >= deadline) break;
      struct pollfd p = { .fd = c->out_fd, .events = POLLOUT, .revents = 0 };
      int pr = poll(&p, 1, (int)(deadline - t));
      if (pr == 0) break;
      if (pr < 0 && errno != EINTR) { c->err = errno; break; }
      continue; /* writable, or POLLERR/POLLHUP: the next sendfile reports the error */
    }
    c->err = errno;
    break;
  }
  close(c->out_fd);
  close(c->in_fd);
}

static const char *errno_code(int e) {
  switch (e) {
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP: return "ENOTSUP";
#endif
    case EBADF: return "EBADF";
    case EIO: return "EIO";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    case EOVERFLOW: return "EOVERFLOW";
    case ESPIPE: return "ESPIPE";
    case ENOTSOCK: return "ENOTSOCK";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNABORTED: return "ECONNABORTED";
    default: return "EUNKNOWN";
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  call_t *c = (call_t *)data;
  if (status != napi_ok && c->err == 0) c->err = ECANCELED;
  if (c->err == 0) {
    napi_value v;
    napi_create_double(env, (double)c->sent, &v);
    napi_resolve_deferred(env, c->deferred, v);
  } else {
    const char *code = c->err == -1 ? "EOF" : c->err == ECANCELED ? "ECANCELED" : errno_code(c->err);
    char msg[160];
    snprintf(msg, sizeof msg, "sendfile failed: %s (%s) at byte %lld", code,
             c->err == -1 ? "end of file" : strerror(c->err), (long long)(c->position + c->sent));
    napi_value code_v, msg_v, err_v, sent_v;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
    napi_create_error(env, code_v, msg_v, &err_v);
    napi_create_int32(env, c->err, &sent_v);
    napi_set_named_property(env, err_v, "errno", sent_v);
    /* Bytes that did go before the error still count for coverage. */
    napi_create_double(env, (double)c->sent, &sent_v);
    napi_set_named_property(env, err_v, "bytesSent", sent_v);
    napi_reject_deferred(env, c->deferred, err_v);
  }
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int get_int64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

static napi_value js_sendfile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t out_fd, in_fd, position, length;
  if (argc < 4 || !get_int64(env, argv[0], &out_fd) || !get_int64(env, argv[1], &in_fd) ||
      !get_int64(env, argv[2], &position) || !get_int64(env, argv[3], &length) || out_fd > INT32_MAX ||
      in_fd > INT32_MAX) {
    return throw_type(env, "sendfile(outFd, inFd, position, length) takes four non-negative integers");
  }
  napi_value promise;
  napi_deferred deferred;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) return NULL;

  call_t *c = (call_t *)calloc(1, sizeof(call_t));
  int dup_out = dup((int)out_fd);
  int dup_in = dup_out < 0 ? -1 : dup((int)in_fd);
  if (c == NULL || dup_out < 0 || dup_in < 0) {
    int e = c == NULL ? ENOMEM : errno;
    if (dup_out >= 0) close(dup_out);
    free(c);
    napi_value code_v, msg_v, err_v;
    napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code_v);
    napi_create_string_utf8(env, "sendfile failed: could not duplicate the descriptors", NAPI_AUTO_LENGTH, &msg_v);
    napi_create_error(env, code_v, msg_v, &err_v);
    napi_reject_deferred(env, deferred, err_v);
    return promise;
  }
  c->deferred = deferred;
  c->out_fd = dup_out;
  c->in_fd = dup_in;
  c->position = position;
  c->length = length;

  napi_value name;
  napi_create_string_utf8(env, "postflow:sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, c, &c->work) != napi_ok ||
      napi_queue_async_work(env, c->work) != napi_ok) {
    close(dup_out);
    close(dup_in);
    free(c);
    napi_throw_error(env, NULL, "sendfile: could not queue the work");
    return NULL;
  }
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "sendfile", NAPI_AUTO_LENGTH, js_sendfile, NULL, &fn);
  napi_set_named_property(env, exports, "sendfile", fn);
  return exports;
}
