// The packs of op(A) and op(B) into the microkernels' panels: included by the AVX2 and AVX-512
// translation units after V, inside their anonymous namespaces (internal linkage, see kernels.h).

// The copying pack (a transposed A, or B as stored): rows of `cols` floats into rows of `width`,
// zero padded, a vector at a time.
void PackRows(const float* src, size_t ld, size_t rows, size_t cols, size_t width, float* dst) {
  constexpr size_t W = V::kWidth;
  if (cols == kNr && width == kNr) {  // a whole B panel
    for (size_t k = 0; k < rows; ++k, src += ld, dst += kNr) {
      V::Store(dst, V::Load(src));
      V::Store(dst + W, V::Load(src + W));
    }
    return;
  }
  if (cols == width && width == VTail::kWidth) {  // a whole A panel of AVX-512's 8 rows
    for (size_t k = 0; k < rows; ++k, src += ld, dst += width) VTail::Store(dst, VTail::Load(src));
    return;
  }
  for (size_t k = 0; k < rows; ++k, src += ld, dst += width) {
    for (size_t j = 0; j < width; j += W) {
      const size_t lanes = cols > j ? (cols - j < W ? cols - j : W) : 0;
      const typename V::R r = lanes == W ? V::Load(src + j) : V::LoadPartial(src + j, lanes, 0.0f);
      if (width - j >= W) {
        V::Store(dst + j, r);
      } else {
        V::StorePartial(dst + j, width - j, r);
      }
    }
  }
}

// Rows r[0..7] become columns: r[j][i] = old r[i][j].
inline void Transpose8x8(__m256 (&r)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void PackTransposed(const float* src, size_t ld, size_t rows, size_t len, size_t width, float* dst) {
  size_t g = 0;
  if (width % 8 == 0) {
    for (; g + 8 <= rows; g += 8) {
      const float* s = src + g * ld;
      size_t k = 0;
      for (; k + 8 <= len; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ld + k);
        Transpose8x8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * width + g, r[j]);
      }
      for (; k < len; ++k)
        for (size_t i = 0; i < 8; ++i) dst[k * width + g + i] = s[i * ld + k];
    }
  }
  if (g == rows) return;
  for (size_t k = 0; k < len; ++k) {
    float* d = dst + k * width;
    for (size_t i = g; i < rows; ++i) d[i] = src[i * ld + k];
  }
}
