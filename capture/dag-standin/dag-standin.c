/*
 * dag-standin.c: the DAG-API STAND-IN library for anoncap's tests (libdag-standin.so).
 *
 * THIS IS NOT ENDACE SOFTWARE and drives no hardware. It exports the DAG API functions that
 * anoncap's DAG backend calls (see dagapi-standin.h for the list and the environment variables)
 * and plays the part of a DAG card's receive stream: it "receives" the ERF records of a file into
 * a circular buffer and hands them out through dag_advance_stream's bottom/top contract.
 *
 * How the buffer imitates the card's:
 * - A real stream buffer of S bytes is mapped twice in a row (or its first E bytes a second time,
 *   E = the extra window size), so a record that wraps past the end of the buffer is contiguous
 *   when read from its start. Here the buffer is one allocation of S + E bytes, and every byte
 *   the "card" writes at offset q < E is also written at S + q: the same view, made by copying.
 * - dag_advance_stream(fd, stream, &bottom): bottom is NULL on the first call, otherwise the
 *   address up to which the caller has finished. That space is handed back to the card, bottom is
 *   renormalised into [buf, buf + S), more records are received, and top is returned with
 *   [bottom, top) holding whole records only. The stand-in refuses (EINVAL) a bottom outside the
 *   last window, which a real card would silently accept and corrupt data over.
 * - Loss: records that do not fit are held back ("wait") or dropped and counted in the next
 *   record's lctr, saturating at 0xFFFF ("drop"); lctr can also be set on chosen records.
 *   Colour types (whose lctr field is a colour) are never given a loss count.
 */
#define _GNU_SOURCE
#include "dagapi-standin.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STANDIN_MAX_DEVICES 16
#define STANDIN_MAX_STREAMS 32
#define STANDIN_DEFAULT_BUFSIZE (4u << 20)
#define ERF_HEADER 16

struct standin_lctr {
	uint64_t index;
	uint16_t value;
};

struct standin_stream {
	int attached;
	int started;
	uint8_t *buf;         /* size + extra bytes */
	uint64_t size;        /* S: the circular buffer */
	uint64_t extra;       /* E: bytes of the buffer's start mirrored after its end */
	uint64_t rd;          /* logical bytes handed back by the consumer */
	uint64_t wr;          /* logical bytes written by the "card" */
	size_t file_pos;      /* next record of the file to receive */
	uint64_t rec_index;   /* its index in file order */
	uint32_t pending_loss;
	uint64_t chunk;
	int drop_when_full;
	int idle_at_end;
	uint64_t mindata;
	struct timeval maxwait;
	struct timeval poll;
	struct standin_lctr *lctr;
	size_t lctr_count;
};

struct standin_device {
	int used;
	int fd;
	uint8_t *file;
	size_t file_len;
	uint16_t max_rlen;
	char config[256];
	struct standin_stream streams[STANDIN_MAX_STREAMS];
};

static struct standin_device devices[STANDIN_MAX_DEVICES];

const char *dag_standin_banner(void)
{
	return "libdag-standin: a test stand-in for the Endace DAG API (not Endace software)";
}

static void standin_warn(const char *what, const char *detail)
{
	fprintf(stderr, "dag-standin: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static struct standin_device *device_of(int fd)
{
	for (int i = 0; i < STANDIN_MAX_DEVICES; i++)
		if (devices[i].used && devices[i].fd == fd)
			return &devices[i];
	return NULL;
}

static struct standin_stream *stream_of(int fd, int stream_num, struct standin_device **dev_out)
{
	struct standin_device *dev = device_of(fd);
	if (!dev) {
		errno = EBADF;
		return NULL;
	}
	if (stream_num < 0 || stream_num >= STANDIN_MAX_STREAMS) {
		errno = EINVAL;
		return NULL;
	}
	if (dev_out)
		*dev_out = dev;
	return &dev->streams[stream_num];
}

static uint64_t env_u64(const char *name, uint64_t fallback)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return fallback;
	char *end = NULL;
	unsigned long long n = strtoull(v, &end, 0);
	if (end == v || *end != '\0') {
		standin_warn("ignoring a malformed number in", name);
		return fallback;
	}
	return (uint64_t)n;
}

static int colour_type(uint8_t type)
{
	switch (type & 0x7f) {
	case 10: case 11: case 15: case 16: case 17: case 19: case 20:
		return 1;
	default:
		return 0;
	}
}

int dag_open(char *dagname)
{
	const char *path = getenv("ANONCAP_DAG_STANDIN_ERF");
	(void)dagname; /* every device name serves the same file */
	if (!path || !*path) {
		standin_warn("ANONCAP_DAG_STANDIN_ERF is not set: it names the ERF file the stand-in serves",
			     NULL);
		errno = ENOENT;
		return -1;
	}
	int slot = -1;
	for (int i = 0; i < STANDIN_MAX_DEVICES; i++)
		if (!devices[i].used) {
			slot = i;
			break;
		}
	if (slot < 0) {
		errno = ENFILE;
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *file = malloc(len ? len : 1);
	if (!file) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, file + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			free(file);
			close(fd);
			errno = e;
			return -1;
		}
		got += (size_t)n;
	}
	/* Keep only whole, well-formed records: a card never delivers anything else. */
	size_t pos = 0;
	uint16_t max_rlen = 0;
	while (pos + ERF_HEADER <= len) {
		uint16_t rlen = be16(file + pos + 10);
		if (rlen < ERF_HEADER || pos + rlen > len)
			break;
		if (rlen > max_rlen)
			max_rlen = rlen;
		pos += rlen;
	}
	if (pos != len)
		standin_warn("ignoring a malformed or partial record at the end of", path);
	struct standin_device *dev = &devices[slot];
	memset(dev, 0, sizeof(*dev));
	dev->used = 1;
	dev->fd = fd;
	dev->file = file;
	dev->file_len = pos;
	dev->max_rlen = max_rlen;
	return fd;
}

static void stream_release(struct standin_stream *s)
{
	free(s->buf);
	free(s->lctr);
	memset(s, 0, sizeof(*s));
}

int dag_close(int dagfd)
{
	struct standin_device *dev = device_of(dagfd);
	if (!dev) {
		errno = EBADF;
		return -1;
	}
	for (int i = 0; i < STANDIN_MAX_STREAMS; i++)
		if (dev->streams[i].attached)
			stream_release(&dev->streams[i]);
	free(dev->file);
	close(dev->fd);
	memset(dev, 0, sizeof(*dev));
	return 0;
}

int dag_configure(int dagfd, char *params)
{
	struct standin_device *dev = device_of(dagfd);
	if (!dev) {
		errno = EBADF;
		return -1;
	}
	snprintf(dev->config, sizeof(dev->config), "%s", params ? params : "");
	return 0;
}

static int parse_lctr(struct standin_stream *s)
{
	const char *v = getenv("ANONCAP_DAG_STANDIN_LCTR");
	if (!v || !*v)
		return 0;
	size_t cap = 1;
	for (const char *p = v; *p; p++)
		if (*p == ',')
			cap++;
	s->lctr = calloc(cap, sizeof(*s->lctr));
	if (!s->lctr)
		return -1;
	const char *p = v;
	while (*p) {
		char *end = NULL;
		unsigned long long idx = strtoull(p, &end, 10);
		if (end == p || *end != ':')
			goto bad;
		p = end + 1;
		unsigned long val = strtoul(p, &end, 10);
		if (end == p || val > 0xFFFF || (*end != ',' && *end != '\0'))
			goto bad;
		s->lctr[s->lctr_count].index = idx;
		s->lctr[s->lctr_count].value = (uint16_t)val;
		s->lctr_count++;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
bad:
	standin_warn("malformed ANONCAP_DAG_STANDIN_LCTR (want \"index:value,...\")", v);
	free(s->lctr);
	s->lctr = NULL;
	s->lctr_count = 0;
	errno = EINVAL;
	return -1;
}

int dag_attach_stream64(int dagfd, int stream_num, uint32_t flags, uint64_t extra_window_size)
{
	struct standin_device *dev = NULL;
	struct standin_stream *s = stream_of(dagfd, stream_num, &dev);
	if (!s)
		return -1;
	if ((stream_num & 1) || flags != 0) {
		/* Odd streams transmit; the stand-in has no transmit side. */
		errno = EINVAL;
		return -1;
	}
	if (s->attached) {
		errno = EBUSY;
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->size = env_u64("ANONCAP_DAG_STANDIN_BUFSIZE", STANDIN_DEFAULT_BUFSIZE);
	if (s->size < ERF_HEADER || s->size < dev->max_rlen) {
		standin_warn("ANONCAP_DAG_STANDIN_BUFSIZE is smaller than the largest record of the file",
			     NULL);
		errno = EINVAL;
		return -1;
	}
	/* 0 maps the whole buffer twice; a smaller window must still hold the largest record. */
	s->extra = extra_window_size == 0 || extra_window_size > s->size ? s->size : extra_window_size;
	if (s->extra < dev->max_rlen)
		s->extra = dev->max_rlen;
	s->buf = calloc(1, s->size + s->extra);
	if (!s->buf) {
		errno = ENOMEM;
		return -1;
	}
	s->chunk = env_u64("ANONCAP_DAG_STANDIN_CHUNK", 0);
	const char *full = getenv("ANONCAP_DAG_STANDIN_WHEN_FULL");
	s->drop_when_full = full && strcmp(full, "drop") == 0;
	const char *end = getenv("ANONCAP_DAG_STANDIN_AT_END");
	s->idle_at_end = end && strcmp(end, "idle") == 0;
	if (parse_lctr(s) != 0) {
		int e = errno;
		free(s->buf);
		memset(s, 0, sizeof(*s));
		errno = e;
		return -1;
	}
	/* libdag's defaults: wait for one record header, no timeout, poll every 10 ms. */
	s->mindata = ERF_HEADER;
	s->poll.tv_usec = 10000;
	s->attached = 1;
	return 0;
}

int dag_detach_stream(int dagfd, int stream_num)
{
	struct standin_stream *s = stream_of(dagfd, stream_num, NULL);
	if (!s)
		return -1;
	if (!s->attached) {
		errno = EINVAL;
		return -1;
	}
	stream_release(s);
	return 0;
}

int dag_start_stream(int dagfd, int stream_num)
{
	struct standin_stream *s = stream_of(dagfd, stream_num, NULL);
	if (!s)
		return -1;
	if (!s->attached) {
		errno = EINVAL;
		return -1;
	}
	if (s->started) {
		errno = EBUSY;
		return -1;
	}
	s->started = 1;
	return 0;
}

int dag_stop_stream(int dagfd, int stream_num)
{
	struct standin_stream *s = stream_of(dagfd, stream_num, NULL);
	if (!s)
		return -1;
	if (!s->attached || !s->started) {
		errno = EINVAL;
		return -1;
	}
	s->started = 0;
	return 0;
}

int dag_set_stream_poll64(int dagfd, int stream_num, uint64_t mindata, struct timeval *maxwait,
			  struct timeval *poll)
{
	struct standin_stream *s = stream_of(dagfd, stream_num, NULL);
	if (!s)
		return -1;
	if (!s->attached || !maxwait || !poll) {
		errno = EINVAL;
		return -1;
	}
	s->mindata = mindata;
	s->maxwait = *maxwait;
	s->poll = *poll;
	return 0;
}

/* Writes n bytes at logical offset pos, keeping the mirror after the buffer's end. */
static void ring_write(struct standin_stream *s, uint64_t pos, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t q = (pos + i) % s->size;
		s->buf[q] = src[i];
		if (q < s->extra)
			s->buf[s->size + q] = src[i];
	}
}

static int lctr_override(const struct standin_stream *s, uint64_t index, uint16_t *value)
{
	for (size_t i = 0; i < s->lctr_count; i++)
		if (s->lctr[i].index == index) {
			*value = s->lctr[i].value;
			return 1;
		}
	return 0;
}

/* The "card" receives records from the file into the buffer. */
static void card_receive(struct standin_device *dev, struct standin_stream *s)
{
	uint64_t budget = s->chunk ? s->chunk : UINT64_MAX;
	int first = 1;
	while (s->file_pos < dev->file_len) {
		const uint8_t *rec = dev->file + s->file_pos;
		uint16_t rlen = be16(rec + 10);
		if (rlen > budget && !first)
			break;
		uint64_t free_bytes = s->size - (s->wr - s->rd);
		if (rlen > free_bytes) {
			if (!s->drop_when_full)
				break;
			/* The buffer is full: the card loses this record and says so in the next one. */
			if (s->pending_loss < 0xFFFF)
				s->pending_loss++;
		} else {
			uint8_t header[ERF_HEADER];
			memcpy(header, rec, ERF_HEADER);
			uint16_t lctr = be16(header + 12);
			if (!colour_type(header[8])) {
				lctr_override(s, s->rec_index, &lctr);
				uint32_t total = (uint32_t)lctr + s->pending_loss;
				lctr = total > 0xFFFF ? 0xFFFF : (uint16_t)total;
				s->pending_loss = 0;
				header[12] = (uint8_t)(lctr >> 8);
				header[13] = (uint8_t)lctr;
			}
			ring_write(s, s->wr, header, ERF_HEADER);
			ring_write(s, s->wr + ERF_HEADER, rec + ERF_HEADER, rlen - ERF_HEADER);
			s->wr += rlen;
		}
		s->file_pos += rlen;
		s->rec_index++;
		budget = rlen >= budget ? 0 : budget - rlen;
		first = 0;
		if (budget == 0)
			break;
	}
}

/* Bytes of whole records visible from the bottom, within the mapped view (S + E bytes). */
static uint64_t visible_bytes(const struct standin_stream *s)
{
	uint64_t start = s->rd % s->size;
	uint64_t avail = s->wr - s->rd;
	uint64_t limit = s->size + s->extra - start;
	if (avail <= limit)
		return avail;
	uint64_t n = 0;
	while (n + ERF_HEADER <= avail && n + ERF_HEADER <= limit) {
		uint16_t rlen = be16(s->buf + start + n + 10);
		if (rlen < ERF_HEADER || n + rlen > limit)
			break;
		n += rlen;
	}
	return n;
}

static int timeval_zero(const struct timeval *t)
{
	return t->tv_sec == 0 && t->tv_usec == 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint8_t *dag_advance_stream(int dagfd, int stream_num, uint8_t **bottom)
{
	struct standin_device *dev = NULL;
	struct standin_stream *s = stream_of(dagfd, stream_num, &dev);
	if (!s)
		return NULL;
	if (!s->attached || !bottom) {
		errno = EINVAL;
		return NULL;
	}
	if (*bottom != NULL) {
		uintptr_t base = (uintptr_t)s->buf;
		uintptr_t b = (uintptr_t)*bottom;
		uint64_t cur = s->rd % s->size;
		if (b < base + cur || b > base + s->size + s->extra) {
			standin_warn("dag_advance_stream: bottom is outside the last window", NULL);
			errno = EINVAL;
			return NULL;
		}
		uint64_t delta = (uint64_t)(b - base) - cur;
		if (delta > s->wr - s->rd) {
			standin_warn("dag_advance_stream: bottom is beyond the last top", NULL);
			errno = EINVAL;
			return NULL;
		}
		s->rd += delta;
	}
	double deadline = now_seconds() + (double)s->maxwait.tv_sec + (double)s->maxwait.tv_usec / 1e6;
	uint64_t avail;
	for (;;) {
		if (s->started)
			card_receive(dev, s);
		avail = visible_bytes(s);
		if (avail == 0 && s->file_pos >= dev->file_len && !s->idle_at_end) {
			/* Stand-in only: the file is exhausted and everything has been handed back. */
			*bottom = s->buf + (s->rd % s->size);
			errno = ENODATA;
			return NULL;
		}
		if (avail >= s->mindata && (avail > 0 || s->mindata == 0))
			break;
		if (!timeval_zero(&s->maxwait) && now_seconds() >= deadline)
			break;
		if (timeval_zero(&s->poll)) {
			sched_yield();
		} else {
			struct timespec nap = { s->poll.tv_sec, (long)s->poll.tv_usec * 1000 };
			nanosleep(&nap, NULL);
		}
	}
	*bottom = s->buf + (s->rd % s->size);
	return *bottom + avail;
}
