// The register-tile GEMM microkernel, written once over a vector traits type V (see
// vector_math.inl for the vocabulary) and instantiated by each SIMD translation unit. Include it
// only inside an anonymous namespace, after defining V, kMr and kNr (= 2 * V::kWidth).
//
// A tile computes only the rows and vector columns it was asked for: the recurrent product of a
// small batch (B = 1 for min-char-rnn) is m = 1 row, and computing all kMr rows would multiply
// its arithmetic by kMr. When a tile has too few accumulators to hide the FMA latency, the k loop
// is split over independent accumulator sets that are summed at the end. The summation order then
// depends on the tile's shape, which depends only on the problem's M and N (thread partitions are
// whole tiles), so results stay the same for any thread count.

// Enough independent FMA chains for two pipes at a 4-cycle latency.
constexpr int kMinChains = 8;

template <int kRows, int kVecs>
void GemmTileRows(size_t kc, const float* ap, size_t a_step, const float* bp, float* c, size_t ldc, size_t n,
                  int accumulate) {
  using R = typename V::R;
  constexpr size_t W = V::kWidth;
  constexpr int kChains = kRows * kVecs;
  constexpr int kSplit = kChains >= kMinChains ? 1 : (2 * kChains >= kMinChains ? 2 : 4);
  R acc[kSplit][kRows][kVecs];
  for (int s = 0; s < kSplit; ++s)
    for (int i = 0; i < kRows; ++i)
      for (int v = 0; v < kVecs; ++v) acc[s][i][v] = V::Set1(0.0f);

  size_t k = 0;
  for (; k + kSplit <= kc; k += kSplit) {
    for (int s = 0; s < kSplit; ++s) {
      R b[kVecs];
      for (int v = 0; v < kVecs; ++v) b[v] = V::Load(bp + s * kNr + v * W);
      for (int i = 0; i < kRows; ++i) {
        const R a = V::Set1(ap[s * a_step + i]);
        for (int v = 0; v < kVecs; ++v) acc[s][i][v] = V::Fma(a, b[v], acc[s][i][v]);
      }
    }
    ap += kSplit * a_step;
    bp += kSplit * kNr;
  }
  for (; k < kc; ++k) {
    for (int i = 0; i < kRows; ++i) {
      const R a = V::Set1(ap[i]);
      for (int v = 0; v < kVecs; ++v) acc[0][i][v] = V::Fma(a, V::Load(bp + v * W), acc[0][i][v]);
    }
    ap += a_step;
    bp += kNr;
  }
  // Pairwise, in a fixed order.
  for (int step = 1; step < kSplit; step *= 2)
    for (int s = 0; s + step < kSplit; s += 2 * step)
      for (int i = 0; i < kRows; ++i)
        for (int v = 0; v < kVecs; ++v) acc[s][i][v] = V::Add(acc[s][i][v], acc[s + step][i][v]);

  for (int i = 0; i < kRows; ++i) {
    float* row = c + i * ldc;
    for (int v = 0; v < kVecs; ++v) {
      const size_t rest = n > v * W ? n - v * W : 0;  // no std::min: see the linkage note in kernels.h
      const size_t lanes = rest < W ? rest : W;
      R r = acc[0][i][v];
      if (lanes == W) {
        if (accumulate) r = V::Add(r, V::Load(row + v * W));
        V::Store(row + v * W, r);
      } else {
        if (accumulate) r = V::Add(r, V::LoadPartial(row + v * W, lanes, 0.0f));
        V::StorePartial(row + v * W, lanes, r);
      }
    }
  }
}

template <int kRows>
void GemmTileColumns(size_t kc, const float* ap, size_t a_step, const float* bp, float* c, size_t ldc, size_t n,
                     int accumulate) {
  if (n > V::kWidth) {
    GemmTileRows<kRows, 2>(kc, ap, a_step, bp, c, ldc, n, accumulate);
  } else {
    GemmTileRows<kRows, 1>(kc, ap, a_step, bp, c, ldc, n, accumulate);
  }
}

// The KernelSet entry point: picks the instantiation for the tile's m rows and n columns.
template <size_t... kRows>
void GemmTileDispatch(std::index_sequence<kRows...>, size_t kc, const float* ap, size_t a_step, const float* bp,
                      float* c, size_t ldc, size_t m, size_t n, int accumulate) {
  using Fn = void (*)(size_t, const float*, size_t, const float*, float*, size_t, size_t, int);
  static constexpr Fn kByRows[] = {&GemmTileColumns<static_cast<int>(kRows) + 1>...};
  kByRows[m - 1](kc, ap, a_step, bp, c, ldc, n, accumulate);
}

void GemmTile(size_t kc, const float* ap, size_t a_step, const float* bp, float* c, size_t ldc, size_t m,
              size_t n, int accumulate) {
  static_assert(kNr == 2 * V::kWidth, "the microkernel covers two vectors of columns");
  GemmTileDispatch(std::make_index_sequence<kMr>{}, kc, ap, a_step, bp, c, ldc, m, n, accumulate);
}
