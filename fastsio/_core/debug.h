/* FASTSIO_DEBUG is defined to 1 by setup.py when FASTSIO_BUILD=debug: invariant checks compiled
 * in. In a release build every `if FASTSIO_DEBUG:` block is dead code the C compiler removes. */
#ifndef FASTSIO_DEBUG
#define FASTSIO_DEBUG 0
#endif
