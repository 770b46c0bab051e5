// 256-bit vector traits (AVX2 + FMA) in the vocabulary of vector_math.inl: the vector type of the
// AVX2 kernels, and the narrow-tail vector of the AVX-512 ones. Include inside an anonymous
// namespace (internal linkage, see kernels.h).

// Lane-enable masks for 0..8 leading lanes, for maskload/maskstore on tails.
alignas(32) const int kTailMasks[9][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0},         {-1, 0, 0, 0, 0, 0, 0, 0},         {-1, -1, 0, 0, 0, 0, 0, 0},
    {-1, -1, -1, 0, 0, 0, 0, 0},      {-1, -1, -1, -1, 0, 0, 0, 0},      {-1, -1, -1, -1, -1, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, 0, 0},   {-1, -1, -1, -1, -1, -1, -1, 0},   {-1, -1, -1, -1, -1, -1, -1, -1},
};

struct V256 {
  using R = __m256;
  using M = __m256;
  static constexpr size_t kWidth = 8;
  static __m256i Mask(size_t n) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kTailMasks[n])); }
  static R Set1(float x) { return _mm256_set1_ps(x); }
  static R Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R LoadPartial(const float* p, size_t n, float fill) {
    const __m256i m = Mask(n);
    return _mm256_blendv_ps(Set1(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void StorePartial(float* p, size_t n, R v) { _mm256_maskstore_ps(p, Mask(n), v); }
  // The first n lanes, the rest zero, with the mask made once for a whole loop of loads (masked-off
  // lanes are never read, so a row may end at the end of its allocation).
  using Lanes = __m256i;
  static Lanes LanesOf(size_t n) { return Mask(n < kWidth ? n : kWidth); }
  static R LoadLanes(const float* p, Lanes m) { return _mm256_maskload_ps(p, m); }
  static R KeepFirst(R v, size_t n) { return _mm256_and_ps(v, _mm256_castsi256_ps(Mask(n))); }
  static R Add(R a, R b) { return _mm256_add_ps(a, b); }
  static R Sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R Mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R Div(R a, R b) { return _mm256_div_ps(a, b); }
  static R Sqrt(R a) { return _mm256_sqrt_ps(a); }
  static R Fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R Max(R a, R b) { return _mm256_max_ps(a, b); }
  static R Min(R a, R b) { return _mm256_min_ps(a, b); }
  static R Abs(R a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
  static M Less(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M IsNan(R a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static R Select(M m, R if_true, R if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
  static R RoundNearest(R a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // n is within [-126, 127] after ExpV's clamp, so 2^n is a normal float built from its exponent.
  static R ScaleByPow2(R x, R n) {
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(x, _mm256_castsi256_ps(e));
  }
  static R CopySign(R magnitude, R sign) {
    return _mm256_or_ps(magnitude, _mm256_and_ps(sign, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)))));
  }
  static float HorizontalSum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float HorizontalMax(R v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
