// 512-bit vector traits (AVX-512F) in the vocabulary of vector_math.inl: the vector type of the
// AVX-512 kernels and of the engine's AVX-512 cell rows. Include inside an anonymous namespace
// (internal linkage, see kernels.h), in a translation unit compiled with -mavx512f.

struct V512 {
  using R = __m512;
  using M = __mmask16;
  static constexpr size_t kWidth = 16;
  static M Mask(size_t n) { return static_cast<M>((1u << n) - 1); }
  static R Set1(float x) { return _mm512_set1_ps(x); }
  static R Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R LoadPartial(const float* p, size_t n, float fill) { return _mm512_mask_loadu_ps(Set1(fill), Mask(n), p); }
  static void StorePartial(float* p, size_t n, R v) { _mm512_mask_storeu_ps(p, Mask(n), v); }
  // See V256::LoadLanes.
  using Lanes = __mmask16;
  static Lanes LanesOf(size_t n) { return n >= kWidth ? static_cast<Lanes>(0xffff) : Mask(n); }
  static R LoadLanes(const float* p, Lanes m) { return _mm512_maskz_loadu_ps(m, p); }
  static R KeepFirst(R v, size_t n) { return _mm512_maskz_mov_ps(Mask(n), v); }
  static R Add(R a, R b) { return _mm512_add_ps(a, b); }
  static R Sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R Mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R Div(R a, R b) { return _mm512_div_ps(a, b); }
  static R Sqrt(R a) { return _mm512_sqrt_ps(a); }
  static R Fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R Max(R a, R b) { return _mm512_max_ps(a, b); }
  static R Min(R a, R b) { return _mm512_min_ps(a, b); }
  static R Abs(R a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
  static M Less(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M IsNan(R a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static R Select(M m, R if_true, R if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
  static R RoundNearest(R a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R ScaleByPow2(R x, R n) { return _mm512_scalef_ps(x, n); }
  static R CopySign(R magnitude, R sign) {
    const __m512i s = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(static_cast<int>(0x80000000u)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), s));
  }
  static float HorizontalSum(R v) { return _mm512_reduce_add_ps(v); }
  static float HorizontalMax(R v) { return _mm512_reduce_max_ps(v); }
};
