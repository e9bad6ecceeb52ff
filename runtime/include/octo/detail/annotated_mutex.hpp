// Mutexes and locks that clang's thread-safety analysis (-Wthread-safety) understands, and the
// macros that annotate what they guard. libstdc++'s std::mutex carries no capability attribute,
// so a field marked OCTO_GUARDED_BY(a std::mutex) would not be checked; these thin wrappers are.
// Under GCC every macro is empty and each wrapper is the std type it holds (same size, same
// cost). `tools/dev lint` runs the analysis (clang-tidy with -Wthread-safety) on the tree.
//
//   class Counter {
//    public:
//     void add() OCTO_EXCLUDES(mu_) {
//       octo::detail::LockGuard lock(mu_);
//       ++n_;
//     }
//    private:
//     octo::detail::Mutex mu_;
//     int n_ OCTO_GUARDED_BY(mu_) = 0;
//   };
//
// Waiting on a condition variable: hold a UniqueLock and write the loop out
// (`while (!ready_) cv_.wait(lock.native());`), so the predicate is read where the analysis
// knows the lock is held.
#pragma once

#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define OCTO_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define OCTO_THREAD_ANNOTATION(x)
#endif

#define OCTO_CAPABILITY(x) OCTO_THREAD_ANNOTATION(capability(x))
#define OCTO_SCOPED_CAPABILITY OCTO_THREAD_ANNOTATION(scoped_lockable)
#define OCTO_GUARDED_BY(x) OCTO_THREAD_ANNOTATION(guarded_by(x))
#define OCTO_PT_GUARDED_BY(x) OCTO_THREAD_ANNOTATION(pt_guarded_by(x))
#define OCTO_ACQUIRED_AFTER(...) OCTO_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define OCTO_REQUIRES(...) OCTO_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define OCTO_REQUIRES_SHARED(...) OCTO_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define OCTO_ACQUIRE(...) OCTO_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define OCTO_ACQUIRE_SHARED(...) OCTO_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define OCTO_RELEASE(...) OCTO_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define OCTO_RELEASE_SHARED(...) OCTO_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define OCTO_EXCLUDES(...) OCTO_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// For the few functions whose locking the analysis cannot follow (say why at each use).
#define OCTO_NO_THREAD_SAFETY_ANALYSIS OCTO_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace octo::detail {

class OCTO_CAPABILITY("mutex") Mutex {
 public:
  void lock() OCTO_ACQUIRE() { mu_.lock(); }
  void unlock() OCTO_RELEASE() { mu_.unlock(); }
  // For condition variables, which need the std type.
  std::mutex& native() noexcept { return mu_; }

 private:
  std::mutex mu_;
};

class OCTO_CAPABILITY("shared_mutex") SharedMutex {
 public:
  void lock() OCTO_ACQUIRE() { mu_.lock(); }
  void unlock() OCTO_RELEASE() { mu_.unlock(); }
  void lock_shared() OCTO_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() OCTO_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex (or a SharedMutex exclusively) for its scope.
template <class M>
class OCTO_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(M& mu) OCTO_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~LockGuard() OCTO_RELEASE() { mu_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  M& mu_;
};

// Holds a SharedMutex shared for its scope.
class OCTO_SCOPED_CAPABILITY SharedLock {
 public:
  explicit SharedLock(SharedMutex& mu) OCTO_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~SharedLock() OCTO_RELEASE() { mu_.unlock_shared(); }
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A Mutex held for its scope that may be let go and taken again inside it, and waited on.
class OCTO_SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mu) OCTO_ACQUIRE(mu) : lock_(mu.native()) {}
  ~UniqueLock() OCTO_RELEASE() = default;
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

  void lock() OCTO_ACQUIRE() { lock_.lock(); }
  void unlock() OCTO_RELEASE() { lock_.unlock(); }
  // For condition_variable::wait, which unlocks and locks again before it returns.
  std::unique_lock<std::mutex>& native() noexcept { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace octo::detail
