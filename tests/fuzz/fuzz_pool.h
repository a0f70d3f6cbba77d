/* fuzz_pool.h: the fuzz harness's entry points, for libFuzzer and for the replay driver.
 *
 * The harness (fuzz_pool.c) is linked either with libFuzzer, which calls
 * these two functions itself, or with replay.c, whose main calls them for
 * every file of the corpora (any compiler, no libFuzzer needed). */
#ifndef BTD_TESTS_FUZZ_POOL_H
#define BTD_TESTS_FUZZ_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Build the seed pools (once).  Returns 0; exits when it cannot. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one input through every check; aborts with a message on a finding.
 * Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The name of the input being run, for the messages of a finding (the
 * replay driver sets it; libFuzzer writes the input to a file itself). */
void fuzz_set_input_name(const char *name);

/* Print what an input does, one line per patch, to fd (the replay
 * driver's --show). */
void fuzz_describe(int fd, const uint8_t *data, size_t size);

/* Write the patched pool of an input to the file out, to look at it with
 * btd info and btd check (the replay driver's --pool).  0, or -1 with
 * errno set. */
int fuzz_write_pool(const uint8_t *data, size_t size, const char *out);

#endif
