#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BPTT_CPU_RELAX() _mm_pause()
#else
#define BPTT_CPU_RELAX() std::this_thread::yield()
#endif

namespace bptt {

namespace {

// How long an idle worker spins before it sleeps: an RNN call dispatches one region per time
// step, microseconds apart, and a sleeping worker takes tens of microseconds to wake.
constexpr int kSpinIterations = 200000;

size_t DefaultThreads() {
  if (const char* env = std::getenv("BPTT_NUM_THREADS")) {
    const long n = std::strtol(env, nullptr, 10);
    if (n >= 1 && n <= 1024) return static_cast<size_t>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

}  // namespace

struct ThreadPool::Impl {
  std::mutex region;  // held by the caller of a parallel region
  std::vector<std::thread> workers;

  // The current region, published by bumping `generation` (release) after writing these.
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  size_t task_count = 0;
  std::atomic<size_t> next_task{0};
  std::atomic<size_t> workers_done{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stopping{false};

  std::mutex sleep_mutex;
  std::condition_variable wake;

  void RunTasks() {
    for (size_t t = next_task.fetch_add(1, std::memory_order_relaxed); t < task_count;
         t = next_task.fetch_add(1, std::memory_order_relaxed)) {
      fn(ctx, t, task_count);
    }
  }

  void WorkerLoop() {
    uint64_t seen = generation.load(std::memory_order_acquire);
    for (;;) {
      uint64_t now = generation.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
        BPTT_CPU_RELAX();
        now = generation.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(sleep_mutex);
        wake.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen || stopping.load(); });
        now = generation.load(std::memory_order_acquire);
      }
      if (stopping.load(std::memory_order_acquire)) return;
      seen = now;
      RunTasks();
      // Every worker checks out of every region, so none can still be reading the region's
      // fields when the caller returns and publishes the next one.
      workers_done.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void Start(size_t threads) {
    stopping.store(false);
    for (size_t i = 1; i < threads; ++i) workers.emplace_back([this] { WorkerLoop(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex);
      stopping.store(true);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    wake.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }
};

ThreadPool::ThreadPool() : impl_(new Impl) { impl_->Start(DefaultThreads()); }

ThreadPool::~ThreadPool() {
  impl_->Stop();
  delete impl_;
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool;
  return pool;
}

void ThreadPool::set_num_threads(size_t n) {
  std::lock_guard<std::mutex> lock(impl_->region);
  if (n == impl_->workers.size() + 1) return;
  impl_->Stop();
  impl_->Start(std::max<size_t>(n, 1));
}

size_t ThreadPool::num_threads() const { return impl_->workers.size() + 1; }

void ThreadPool::run(size_t task_count, TaskFn fn, void* ctx) {
  Impl& p = *impl_;
  std::unique_lock<std::mutex> lock(p.region, std::try_to_lock);
  if (!lock.owns_lock() || p.workers.empty() || task_count <= 1) {
    for (size_t t = 0; t < task_count; ++t) fn(ctx, t, task_count);
    return;
  }
  p.fn = fn;
  p.ctx = ctx;
  p.task_count = task_count;
  p.next_task.store(0, std::memory_order_relaxed);
  p.workers_done.store(0, std::memory_order_relaxed);
  {
    // Under the sleep mutex, so a worker between its predicate check and its wait cannot miss it.
    std::lock_guard<std::mutex> sleep(p.sleep_mutex);
    p.generation.fetch_add(1, std::memory_order_acq_rel);
  }
  p.wake.notify_all();
  p.RunTasks();
  const size_t workers = p.workers.size();
  while (p.workers_done.load(std::memory_order_acquire) != workers) BPTT_CPU_RELAX();
}

}  // namespace bptt
