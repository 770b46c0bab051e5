#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#endif

namespace bptt {
namespace {

constexpr size_t kMaxThreads = 1024;
// The claim counter keeps the task index in its low 32 bits.
constexpr uint64_t kIndexMask = 0xffffffffu;
// An RNN step dispatches every few microseconds; waiting this long after a run keeps workers
// hot between steps without burning a core for long when the addon sits idle.
constexpr std::chrono::microseconds kSpinTime(200);
// While waiting, a worker yields its core every this many pauses (about a microsecond): on a
// machine with no spare core, Node's own helper threads (parallel scavenges, JIT) may need it,
// and the JS thread stalls until they finish.
constexpr unsigned kSpinsPerYield = 64;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

size_t DefaultThreads() {
  if (const char* env = std::getenv("BPTT_NUM_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const unsigned long n = std::strtoul(env, &end, 10);
    if (*end == '\0' && n >= 1 && n <= kMaxThreads) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : (hw > kMaxThreads ? kMaxThreads : hw);
}

}  // namespace

// One run at a time owns the pool (busy). A run publishes its job, then a new generation;
// workers claim task indices from a counter tagged with that generation, and the caller waits
// for its tasks to be done, never for the workers: a worker that starts, wakes or looks late
// simply finds nothing left to claim, and can never claim a task of a finished or later job.
struct ThreadPool::Impl {
  std::mutex busy;
  std::atomic<size_t> threads{1};
  std::vector<std::thread> workers;
  uint32_t last_generation = 0;  // guarded by busy

  std::atomic<TaskFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<size_t> count{0};
  std::atomic<uint64_t> claim{0};  // generation << 32 | next task index
  std::atomic<size_t> done{0};
  std::atomic<uint32_t> generation{0};
  std::atomic<bool> stop{false};

  std::mutex sleep_mutex;
  std::condition_variable wake;
  std::atomic<int> sleepers{0};

  // The first exception a task of the current run threw (e.g. bad_alloc growing a scratch
  // buffer): caught on whichever thread ran the task, so none escapes a worker (which would
  // abort the process) or leaves the caller while other threads still run its tasks, and thrown
  // again by run() on the calling thread once every task is done.
  std::mutex failure_mutex;
  std::exception_ptr failure;

  // Runs tasks of generation gen until none is left to claim. The job fields may already belong
  // to a later job when read; the claim then fails, because the caller closes a generation's
  // counter before it writes the next job's fields.
  void Work(uint32_t gen) {
    const TaskFn f = fn.load(std::memory_order_acquire);
    void* const c = ctx.load(std::memory_order_acquire);
    const size_t n = count.load(std::memory_order_acquire);
    uint64_t v = claim.load(std::memory_order_acquire);
    while ((v >> 32) == gen && (v & kIndexMask) < n) {
      if (claim.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        try {
          f(c, static_cast<size_t>(v & kIndexMask), n);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (!failure) failure = std::current_exception();
        }
        done.fetch_add(1, std::memory_order_release);
        v = claim.load(std::memory_order_acquire);
      }
    }
  }

  void WorkerLoop() {
    uint32_t seen = generation.load(std::memory_order_acquire);
    for (;;) {
      uint32_t gen = generation.load(std::memory_order_acquire);
      const auto spin_start = std::chrono::steady_clock::now();
      for (unsigned spins = 1; gen == seen && !stop.load(std::memory_order_acquire); ++spins) {
        CpuRelax();
        if (spins % kSpinsPerYield == 0) {
          if (std::chrono::steady_clock::now() - spin_start > kSpinTime) {
            std::unique_lock<std::mutex> lock(sleep_mutex);
            sleepers.fetch_add(1);
            wake.wait(lock, [&] { return generation.load() != seen || stop.load(); });
            sleepers.fetch_sub(1);
          } else {
            std::this_thread::yield();
          }
        }
        gen = generation.load(std::memory_order_acquire);
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = gen;
      Work(gen);
    }
  }

  // Both need busy held.
  void StartWorkers() {
    const size_t want = threads.load() - 1;
    if (workers.size() == want) return;
    StopWorkers();
    stop.store(false);
    workers.reserve(want);
    for (size_t i = 0; i < want; ++i) {
      try {
        workers.emplace_back([this] { WorkerLoop(); });
      } catch (const std::system_error& e) {
        // The threads started so far stay; the next parallel run tries again.
        throw std::runtime_error("could not start kernel thread " + std::to_string(i + 1) + " of " +
                                 std::to_string(want) + " (" + e.what() +
                                 "); setNumThreads(1) runs the kernels on the calling thread alone");
      }
    }
  }

  void StopWorkers() {
    if (workers.empty()) return;
    {
      std::lock_guard<std::mutex> lock(sleep_mutex);
      stop.store(true);
    }
    wake.notify_all();
    for (std::thread& w : workers) w.join();
    workers.clear();
  }
};

// Workers start lazily, at the first parallel run: loading the addon creates no threads.
ThreadPool::ThreadPool() : impl_(new Impl) { impl_->threads.store(DefaultThreads()); }

ThreadPool::~ThreadPool() {
  shutdown();
  delete impl_;
}

// Deliberately never destroyed: a static destructor at process exit must not race with a native
// call still running on another thread. The addon's environment cleanup hook joins the workers
// when Node tears its environments down; idle workers left at a plain exit() just end with it.
ThreadPool& ThreadPool::global() {
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

void ThreadPool::set_num_threads(size_t n) {
  if (n < 1) n = 1;
  if (n > kMaxThreads) n = kMaxThreads;
  std::lock_guard<std::mutex> lock(impl_->busy);
  impl_->threads.store(n);
  if (impl_->workers.size() != n - 1) impl_->StopWorkers();
}

size_t ThreadPool::num_threads() const { return impl_->threads.load(std::memory_order_relaxed); }

void ThreadPool::shutdown() {
  std::lock_guard<std::mutex> lock(impl_->busy);
  impl_->StopWorkers();
}

void ThreadPool::run(size_t task_count, TaskFn fn, void* ctx) {
  Impl& p = *impl_;
  const auto serial = [&] {
    for (size_t t = 0; t < task_count; ++t) fn(ctx, t, task_count);
  };
  if (task_count <= 1 || task_count >= kIndexMask || p.threads.load(std::memory_order_relaxed) <= 1 ||
      !p.busy.try_lock()) {
    serial();
    return;
  }
  std::lock_guard<std::mutex> lock(p.busy, std::adopt_lock);
  p.StartWorkers();
  const uint32_t gen = ++p.last_generation;
  p.count.store(task_count, std::memory_order_release);
  p.fn.store(fn, std::memory_order_release);
  p.ctx.store(ctx, std::memory_order_release);
  p.done.store(0, std::memory_order_relaxed);
  p.claim.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  p.generation.store(gen);  // seq_cst: ordered against the sleepers load below
  if (p.sleepers.load() > 0) {
    { std::lock_guard<std::mutex> sleep_lock(p.sleep_mutex); }
    p.wake.notify_all();
  }
  p.Work(gen);
  for (unsigned spins = 1; p.done.load(std::memory_order_acquire) != task_count; ++spins) {
    if (spins % 1024 == 0) {
      std::this_thread::yield();
    } else {
      CpuRelax();
    }
  }
  p.claim.store((static_cast<uint64_t>(gen) << 32) | kIndexMask, std::memory_order_release);
  if (p.failure) {
    // Every task is done and no worker can claim another: safe to leave.
    std::exception_ptr failure = nullptr;
    std::swap(failure, p.failure);
    std::rethrow_exception(failure);
  }
}

}  // namespace bptt
