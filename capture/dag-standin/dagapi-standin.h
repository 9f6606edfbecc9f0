/*
 * dagapi-standin.h: the functions of the DAG-API STAND-IN library (libdag-standin.so).
 *
 * THIS IS NOT ENDACE SOFTWARE. It is a test double written for anoncap's test suite: it exports
 * the few DAG API functions a receive capture calls, with the same names and C signatures as
 * Endace's dagapi.h (DAG software 5.x and later), and serves ERF records from a file through the
 * same memory-window contract as a DAG card's receive stream. Nothing here talks to hardware.
 * See docs/dag.md for what it covers and what only real DAG software can show.
 *
 * Configuration is by environment variable, read by dag_open (file) and dag_attach_stream64
 * (everything else):
 *   ANONCAP_DAG_STANDIN_ERF        ERF file whose records the "card" receives (required)
 *   ANONCAP_DAG_STANDIN_BUFSIZE    bytes in the stream's circular buffer (default 4194304)
 *   ANONCAP_DAG_STANDIN_CHUNK      most bytes of records received per dag_advance_stream call
 *                                  (default 0: as many as fit)
 *   ANONCAP_DAG_STANDIN_LCTR       "i:v,i:v,...": set the loss counter of record i (0-based,
 *                                  in file order) to v, as a card does after a memory hole
 *   ANONCAP_DAG_STANDIN_WHEN_FULL  "wait" (default): hold records back until there is room;
 *                                  "drop": drop them and count them in the next record's lctr
 *   ANONCAP_DAG_STANDIN_AT_END     "end" (default): once every record has been delivered and
 *                                  handed back, dag_advance_stream fails with ENODATA;
 *                                  "idle": it keeps returning empty windows, like a quiet link
 */
#ifndef ANONCAP_DAGAPI_STANDIN_H
#define ANONCAP_DAGAPI_STANDIN_H

#include <stdint.h>
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns a descriptor (>= 0) or -1 with errno set. */
int dag_open(char *dagname);
int dag_close(int dagfd);
/* Accepts and records any configuration string; returns 0. */
int dag_configure(int dagfd, char *params);
/* Receive streams are even-numbered; odd ones fail with EINVAL. flags must be 0. */
int dag_attach_stream64(int dagfd, int stream_num, uint32_t flags, uint64_t extra_window_size);
int dag_detach_stream(int dagfd, int stream_num);
int dag_start_stream(int dagfd, int stream_num);
int dag_stop_stream(int dagfd, int stream_num);
int dag_set_stream_poll64(int dagfd, int stream_num, uint64_t mindata, struct timeval *maxwait,
                          struct timeval *poll);
uint8_t *dag_advance_stream(int dagfd, int stream_num, uint8_t **bottom);

/* Stand-in only (not in libdag): a NUL-terminated banner naming this library as a stand-in. */
const char *dag_standin_banner(void);

#ifdef __cplusplus
}
#endif

#endif /* ANONCAP_DAGAPI_STANDIN_H */
