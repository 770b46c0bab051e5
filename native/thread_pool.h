// A persistent pool of worker threads for the data-parallel parts of one native call.
//
// Work is split into tasks by index; which thread runs which task never changes the result
// because callers partition output, never a reduction, across tasks.
#pragma once

#include <cstddef>

namespace bptt {

class ThreadPool {
 public:
  // Task body: fn(ctx, task_index, task_count). A plain function pointer plus context keeps the
  // per-time-step dispatch free of allocation.
  using TaskFn = void (*)(void* ctx, size_t task, size_t task_count);

  static ThreadPool& global();

  // n >= 1; n = 1 runs everything on the calling thread. Safe to call between parallel runs.
  void set_num_threads(size_t n);
  size_t num_threads() const;

  // Runs fn for task = 0 .. task_count-1 and returns when all are done. Thread-safe: when another
  // thread already holds the pool, this call runs all its tasks on the calling thread. If tasks
  // throw, run() throws the first exception on the calling thread once all tasks are done (the
  // others still run).
  void run(size_t task_count, TaskFn fn, void* ctx);

  // Joins the worker threads (a later parallel run starts them again). For environment teardown:
  // after the last Node environment goes, no thread of ours is left running.
  void shutdown();

  template <class F>
  void parallel_for(size_t task_count, F& body) {
    run(task_count, [](void* c, size_t t, size_t n) { (*static_cast<F*>(c))(t, n); }, &body);
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

 private:
  ThreadPool();
  struct Impl;
  Impl* impl_;
};

}  // namespace bptt
