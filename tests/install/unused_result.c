/* Compiled with -Werror by tests/install/CMakeLists.txt: dropping the result
 * of an allocation is an error (warn_unused_result); using it is not. */
#include "spanalloc.h"

void *keep;
void f(void) {
#ifdef USE_RESULT
  keep = spanalloc_malloc(8);
#else
  spanalloc_malloc(8);
#endif
}
