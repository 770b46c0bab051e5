// The register-tile GEMM microkernel, written once over a vector traits type V (see
// vector_math.inl for the vocabulary) and instantiated by each SIMD translation unit. Include it
// only inside an anonymous namespace, after defining V, VTail (the vector type of narrow column
// tails: V itself, or a narrower one), kMr, kNr (= 2 * V::kWidth) and kRowVecs (vectors of columns
// per pass of a single-row product).
//
// A tile computes only the rows and vector columns it was asked for: a short last tile (one row
// of a batch of 17, say) would otherwise multiply its arithmetic by up to kMr. A single row on its
// own (the recurrence of a batch of 1) takes GemmRow below instead. When a tile has too few accumulators to hide the FMA latency, the k loop
// is split over independent accumulator sets that are summed at the end. The summation order then
// depends on the tile's shape, which depends only on the problem's M and N (thread partitions are
// whole tiles), so results stay the same for any thread count.

// Enough independent FMA chains for two pipes at a 4-cycle latency.
constexpr int kMinChains = 8;

// How many interleaved partial sums over k a tile with `chains` accumulators keeps.
constexpr int SplitFor(int chains) { return chains >= kMinChains ? 1 : (2 * chains >= kMinChains ? 2 : 4); }

// Vec is V, or VTail (narrower) for a tile of at most VTail::kWidth columns. kInPlace false: the
// packed panels of kernels.h (A's column k is kMr floats, B's row k kNr zero-padded floats).
// kInPlace true: A's element (i, k) at ap[i * a_row + k * a_k], B's row k at bp + k * b_k, of
// which only the first n columns are read (the last vector masked). Each element of C is summed
// the same way in both, so they give the same bits.
template <class Vec, int kRows, int kVecs, bool kInPlace>
void GemmTileRows(size_t kc, const float* ap, size_t a_row, size_t a_k, const float* bp, size_t b_k, float* c,
                  size_t ldc, size_t n, int accumulate) {
  using R = typename Vec::R;
  constexpr size_t W = Vec::kWidth;
  constexpr int kSplit = SplitFor(kRows * kVecs);
  if constexpr (!kInPlace) {
    a_row = 1;
    a_k = kMr;
    b_k = kNr;
  }
  // The last vector of an in-place B row stops at column n; every other load is whole.
  const typename Vec::Lanes last = Vec::LanesOf(kInPlace ? n - (kVecs - 1) * W : W);
  // C is touched only after the k loop: start fetching its lines now, so the misses of a large
  // C overlap the arithmetic instead of following it.
  for (int i = 0; i < kRows; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + kVecs * W - 1, 1);
  }
  R acc[kSplit][kRows][kVecs];
  for (int s = 0; s < kSplit; ++s)
    for (int i = 0; i < kRows; ++i)
      for (int v = 0; v < kVecs; ++v) acc[s][i][v] = Vec::Set1(0.0f);

  size_t k = 0;
  for (; k + kSplit <= kc; k += kSplit) {
    for (int s = 0; s < kSplit; ++s) {
      R b[kVecs];
      for (int v = 0; v < kVecs; ++v) b[v] = kInPlace && v == kVecs - 1 ? Vec::LoadLanes(bp + s * b_k + v * W, last) : Vec::Load(bp + s * b_k + v * W);
      for (int i = 0; i < kRows; ++i) {
        const R a = Vec::Set1(ap[s * a_k + i * a_row]);
        for (int v = 0; v < kVecs; ++v) acc[s][i][v] = Vec::Fma(a, b[v], acc[s][i][v]);
      }
    }
    ap += kSplit * a_k;
    bp += kSplit * b_k;
  }
  for (; k < kc; ++k) {
    for (int i = 0; i < kRows; ++i) {
      const R a = Vec::Set1(ap[i * a_row]);
      for (int v = 0; v < kVecs; ++v) {
        const R b = kInPlace && v == kVecs - 1 ? Vec::LoadLanes(bp + v * W, last) : Vec::Load(bp + v * W);
        acc[0][i][v] = Vec::Fma(a, b, acc[0][i][v]);
      }
    }
    ap += a_k;
    bp += b_k;
  }
  // Pairwise, in a fixed order.
  for (int step = 1; step < kSplit; step *= 2)
    for (int s = 0; s + step < kSplit; s += 2 * step)
      for (int i = 0; i < kRows; ++i)
        for (int v = 0; v < kVecs; ++v) acc[s][i][v] = Vec::Add(acc[s][i][v], acc[s + step][i][v]);

  // Unrolled, so acc stays in registers: indexed at run time it would live on the stack, stored
  // back in every k step.
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i) {
    float* row = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < kVecs; ++v) {
      const size_t rest = n > v * W ? n - v * W : 0;  // no std::min: see the linkage note in kernels.h
      const size_t lanes = rest < W ? rest : W;
      R r = acc[0][i][v];
      if (lanes == W) {
        if (accumulate) r = Vec::Add(r, Vec::Load(row + v * W));
        Vec::Store(row + v * W, r);
      } else {
        if (accumulate) r = Vec::Add(r, Vec::LoadPartial(row + v * W, lanes, 0.0f));
        Vec::StorePartial(row + v * W, lanes, r);
      }
    }
  }
}

// One row of A times kVecs vectors of columns of a packed B block (vector v in panel v / 2, whose
// k rows are panel_stride floats apart). Each column is summed exactly as GemmTileRows<*, 1, *, *> sums
// it (same split over k, same pairwise combination), so a row gets the same bits from either.
// kNarrowLast: the last vector holds at most VTail::kWidth columns and takes VTail (see
// GemmTileColumns), with the broadcast value narrowed by ToTail rather than loaded again.
template <int kVecs, bool kNarrowLast>
void GemmRowVecs(size_t kc, const float* a, size_t a_step, const float* bp, size_t panel_stride, float* c, size_t n,
                 int accumulate) {
  using R = typename V::R;
  using T = typename VTail::R;
  constexpr size_t W = V::kWidth;
  constexpr int kWide = kNarrowLast ? kVecs - 1 : kVecs;
  constexpr int kSplit = SplitFor(1);
  static_assert(SplitFor(2) == kSplit, "one- and two-vector single-row tiles split k alike");
  const float* col[kVecs];
  for (int v = 0; v < kVecs; ++v) col[v] = bp + (v / 2) * panel_stride + (v % 2) * W;
  R acc[kSplit][kVecs];
  T tail[kSplit];
  for (int s = 0; s < kSplit; ++s) {
    for (int v = 0; v < kVecs; ++v) acc[s][v] = V::Set1(0.0f);
    tail[s] = VTail::Set1(0.0f);
  }
  size_t k = 0, at = 0;
  for (; k + kSplit <= kc; k += kSplit) {
    for (int s = 0; s < kSplit; ++s) {
      const R x = V::Set1(a[(k + s) * a_step]);
      for (int v = 0; v < kWide; ++v) acc[s][v] = V::Fma(x, V::Load(col[v] + at + s * kNr), acc[s][v]);
      if constexpr (kNarrowLast) tail[s] = VTail::Fma(ToTail(x), VTail::Load(col[kWide] + at + s * kNr), tail[s]);
    }
    at += kSplit * kNr;
  }
  for (; k < kc; ++k, at += kNr) {
    const R x = V::Set1(a[k * a_step]);
    for (int v = 0; v < kWide; ++v) acc[0][v] = V::Fma(x, V::Load(col[v] + at), acc[0][v]);
    if constexpr (kNarrowLast) tail[0] = VTail::Fma(ToTail(x), VTail::Load(col[kWide] + at), tail[0]);
  }
  for (int step = 1; step < kSplit; step *= 2)
    for (int s = 0; s + step < kSplit; s += 2 * step) {
      for (int v = 0; v < kWide; ++v) acc[s][v] = V::Add(acc[s][v], acc[s + step][v]);
      if constexpr (kNarrowLast) tail[s] = VTail::Add(tail[s], tail[s + step]);
    }
  for (int v = 0; v < kWide; ++v) {
    const size_t rest = n > v * W ? n - v * W : 0;
    const size_t lanes = rest < W ? rest : W;
    R r = acc[0][v];
    if (lanes == W) {
      if (accumulate) r = V::Add(r, V::Load(c + v * W));
      V::Store(c + v * W, r);
    } else {
      if (accumulate) r = V::Add(r, V::LoadPartial(c + v * W, lanes, 0.0f));
      V::StorePartial(c + v * W, lanes, r);
    }
  }
  if constexpr (kNarrowLast) {
    float* last = c + kWide * W;
    const size_t lanes = n - kWide * W;
    T r = tail[0];
    if (accumulate) r = VTail::Add(r, VTail::LoadPartial(last, lanes, 0.0f));
    VTail::StorePartial(last, lanes, r);
  }
}

template <size_t... kVecs>
void GemmRowDispatch(std::index_sequence<kVecs...>, size_t vecs, size_t kc, const float* a, size_t a_step,
                     const float* bp, size_t panel_stride, float* c, size_t n, int accumulate) {
  using Fn = void (*)(size_t, const float*, size_t, const float*, size_t, float*, size_t, int);
  static constexpr Fn kByVecs[] = {&GemmRowVecs<static_cast<int>(kVecs) + 1, false>...};
  static constexpr Fn kNarrowByVecs[] = {&GemmRowVecs<static_cast<int>(kVecs) + 1, true>...};
  const bool narrow = VTail::kWidth < V::kWidth && n - (vecs - 1) * V::kWidth <= VTail::kWidth;
  (narrow ? kNarrowByVecs : kByVecs)[vecs - 1](kc, a, a_step, bp, panel_stride, c, n, accumulate);
}

// The KernelSet's gemm_row: kRowVecs vectors of columns per pass, so each value of A serves
// several B panels and a whole row takes a few calls instead of one per tile.
//
// Successive calls visit the passes in alternating order. The recurrence multiplies by the same B
// every time step, and min-char-rnn's (100 x 100, 45 KB packed) is larger than L1: walked the same
// way each time, every line would have been evicted before its next use; walked back, the
// passes read last come first, still in L1. Each column's sum is the same either way.
void GemmRow(size_t kc, const float* a, size_t a_step, const float* bp, float* c, size_t n, int accumulate) {
  static_assert(kRowVecs % 2 == 0, "a pass covers whole panels");
  const size_t vecs = (n + V::kWidth - 1) / V::kWidth, panel_stride = kc * kNr;
  const size_t passes = (vecs + kRowVecs - 1) / kRowVecs;
  static thread_local bool t_backwards = false;  // per thread: no data race, nothing shared
  t_backwards = !t_backwards;
  for (size_t pass = 0; pass < passes; ++pass) {
    const size_t v0 = (t_backwards ? passes - 1 - pass : pass) * kRowVecs;
    const size_t count = vecs - v0 < kRowVecs ? vecs - v0 : kRowVecs;
    GemmRowDispatch(std::make_index_sequence<kRowVecs>{}, count, kc, a, a_step, bp + v0 / 2 * panel_stride,
                    panel_stride, c + v0 * V::kWidth, n - v0 * V::kWidth, accumulate);
  }
}

// A tail of at most VTail::kWidth columns (1 of logits' 65, 4 of a hidden size of 100) takes the
// narrower vectors: where those issue two FMAs per cycle to the wide ones' one (Zen 4), the tile
// costs half as much. Each column's sum is the same with either width.
template <int kRows, bool kInPlace>
void GemmTileColumns(size_t kc, const float* ap, size_t a_row, size_t a_k, const float* bp, size_t b_k, float* c,
                     size_t ldc, size_t n, int accumulate) {
  if (n > V::kWidth) {
    GemmTileRows<V, kRows, 2, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
  } else if (VTail::kWidth < V::kWidth && n <= VTail::kWidth) {
    GemmTileRows<VTail, kRows, 1, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
  } else {
    GemmTileRows<V, kRows, 1, kInPlace>(kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
  }
}

// The KernelSet entry points: pick the instantiation for the tile's m rows and n columns.
template <bool kInPlace, size_t... kRows>
void GemmTileDispatch(std::index_sequence<kRows...>, size_t kc, const float* ap, size_t a_row, size_t a_k,
                      const float* bp, size_t b_k, float* c, size_t ldc, size_t m, size_t n, int accumulate) {
  using Fn = void (*)(size_t, const float*, size_t, size_t, const float*, size_t, float*, size_t, size_t, int);
  static constexpr Fn kByRows[] = {&GemmTileColumns<static_cast<int>(kRows) + 1, kInPlace>...};
  kByRows[m - 1](kc, ap, a_row, a_k, bp, b_k, c, ldc, n, accumulate);
}

void GemmTile(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, size_t m, size_t n,
              int accumulate) {
  static_assert(kNr == 2 * V::kWidth, "the microkernel covers two vectors of columns");
  GemmTileDispatch<false>(std::make_index_sequence<kMr>{}, kc, ap, 1, kMr, bp, kNr, c, ldc, m, n, accumulate);
}

void GemmTileInPlace(size_t kc, const float* a, size_t a_row, size_t a_k, const float* b, size_t b_k, float* c,
                     size_t ldc, size_t m, size_t n, int accumulate) {
  GemmTileDispatch<true>(std::make_index_sequence<kMr>{}, kc, a, a_row, a_k, b, b_k, c, ldc, m, n, accumulate);
}
