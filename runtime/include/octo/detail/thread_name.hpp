// Names the calling thread (at most 15 characters, Linux's limit), so that octohalo's own
// threads can be told apart in top, gdb and /proc/<pid>/task/*/comm.
#pragma once

#include <pthread.h>

namespace octo::detail {

inline void name_this_thread(const char* name) noexcept {
  ::pthread_setname_np(::pthread_self(), name);
}

}  // namespace octo::detail
